"""Keypoint sets: what a model predicts and how OKS weighs each point, and the named presets.

COCO-17 is the default (cards without a ``[keypoints]`` table get it); ``[keypoints] preset``
selects one of :data:`PRESETS` by name. The values live in :mod:`.keypoint_presets`, with their
sources.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .keypoint_presets import (
    COCO_FLIP_PAIRS,
    COCO_NAMES,
    COCO_SIGMAS,
    COCO_SKELETON,
    CROWDPOSE_FLIP_PAIRS,
    CROWDPOSE_NAMES,
    CROWDPOSE_SIGMAS,
    CROWDPOSE_SKELETON,
    WHOLEBODY_FLIP_PAIRS,
    WHOLEBODY_NAMES,
    WHOLEBODY_SIGMAS,
    WHOLEBODY_SKELETON,
)

__all__ = [
    "COCO17",
    "COCO_FLIP_PAIRS",
    "COCO_NAMES",
    "COCO_SIGMAS",
    "COCO_SKELETON",
    "CROWDPOSE14",
    "COCO_WHOLEBODY133",
    "PRESETS",
    "KeypointSet",
    "preset",
]


@dataclass(frozen=True)
class KeypointSet:
    """A keypoint definition: what the model predicts and how OKS weighs each point."""

    names: tuple[str, ...] = COCO_NAMES
    flip_pairs: tuple[tuple[str, str], ...] = COCO_FLIP_PAIRS
    sigmas: tuple[float, ...] = COCO_SIGMAS
    skeleton: tuple[tuple[int, int], ...] = field(default=COCO_SKELETON)
    # The preset it was built from ("" for a custom set); for messages, not for equality.
    preset: str = field(default="", compare=False)

    @property
    def num_keypoints(self) -> int:
        return len(self.names)

    @property
    def label(self) -> str:
        """How messages name this set: ``14 keypoints (preset crowdpose14)``."""
        what = f"preset {self.preset}" if self.preset else "custom"
        return f"{self.num_keypoints} keypoints ({what})"

    def flip_index(self) -> list[int]:
        """For each keypoint, the index of its mirror image (itself when unpaired)."""
        index = {name: i for i, name in enumerate(self.names)}
        perm = list(range(len(self.names)))
        for a, b in self.flip_pairs:
            perm[index[a]], perm[index[b]] = index[b], index[a]
        return perm


def _indices(names: tuple[str, ...], edges: tuple[tuple[str, str], ...]):
    index = {n: i for i, n in enumerate(names)}
    return tuple((index[a], index[b]) for a, b in edges)


COCO17 = KeypointSet(preset="coco17")
CROWDPOSE14 = KeypointSet(
    names=CROWDPOSE_NAMES,
    flip_pairs=CROWDPOSE_FLIP_PAIRS,
    sigmas=CROWDPOSE_SIGMAS,
    skeleton=_indices(CROWDPOSE_NAMES, CROWDPOSE_SKELETON),
    preset="crowdpose14",
)
COCO_WHOLEBODY133 = KeypointSet(
    names=WHOLEBODY_NAMES,
    flip_pairs=WHOLEBODY_FLIP_PAIRS,
    sigmas=WHOLEBODY_SIGMAS,
    skeleton=_indices(WHOLEBODY_NAMES, WHOLEBODY_SKELETON),
    preset="coco_wholebody133",
)

#: The presets ``[keypoints] preset`` can name.
PRESETS: dict[str, KeypointSet] = {ks.preset: ks for ks in (COCO17, CROWDPOSE14, COCO_WHOLEBODY133)}


def preset(name: str) -> KeypointSet | None:
    """The preset called ``name``, or None."""
    return PRESETS.get(name)
