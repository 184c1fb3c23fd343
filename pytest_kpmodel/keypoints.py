"""The COCO-17 person keypoint set: names, left/right flip pairs, OKS sigmas and skeleton.

This is the one place these defaults live; cards without a ``[keypoints]`` table get them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

COCO_NAMES: tuple[str, ...] = (
    "nose",
    "left_eye",
    "right_eye",
    "left_ear",
    "right_ear",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_hip",
    "right_hip",
    "left_knee",
    "right_knee",
    "left_ankle",
    "right_ankle",
)

# pycocotools' COCOeval.Params.kpt_oks_sigmas, in COCO_NAMES order.
COCO_SIGMAS: tuple[float, ...] = (
    0.026, 0.025, 0.025, 0.035, 0.035, 0.079, 0.079, 0.072, 0.072,
    0.062, 0.062, 0.107, 0.107, 0.087, 0.087, 0.089, 0.089,
)  # fmt: skip

COCO_FLIP_PAIRS: tuple[tuple[str, str], ...] = tuple(
    (COCO_NAMES[i], COCO_NAMES[i + 1]) for i in range(1, 17, 2)
)

# The skeleton from COCO's person category, 0-based indices into COCO_NAMES.
COCO_SKELETON: tuple[tuple[int, int], ...] = (
    (15, 13), (13, 11), (16, 14), (14, 12), (11, 12), (5, 11), (6, 12), (5, 6), (5, 7),
    (6, 8), (7, 9), (8, 10), (1, 2), (0, 1), (0, 2), (1, 3), (2, 4), (3, 5), (4, 6),
)  # fmt: skip


@dataclass(frozen=True)
class KeypointSet:
    """A keypoint definition: what the model predicts and how OKS weighs each point."""

    names: tuple[str, ...] = COCO_NAMES
    flip_pairs: tuple[tuple[str, str], ...] = COCO_FLIP_PAIRS
    sigmas: tuple[float, ...] = COCO_SIGMAS
    skeleton: tuple[tuple[int, int], ...] = field(default=COCO_SKELETON)

    @property
    def num_keypoints(self) -> int:
        return len(self.names)

    def flip_index(self) -> list[int]:
        """For each keypoint, the index of its mirror image (itself when unpaired)."""
        index = {name: i for i, name in enumerate(self.names)}
        perm = list(range(len(self.names)))
        for a, b in self.flip_pairs:
            perm[index[a]], perm[index[b]] = index[b], index[a]
        return perm


COCO17 = KeypointSet()
