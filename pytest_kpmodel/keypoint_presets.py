"""Keypoint layouts of public datasets: names, left/right flip pairs, OKS sigmas, skeletons.

A data table; :mod:`pytest_kpmodel.keypoints` turns each into a ``KeypointSet`` preset.
Sources (checked against them value for value when this table was written):

* COCO-17: pycocotools ``COCOeval.Params.kpt_oks_sigmas``; names and skeleton from the COCO
  person category (``person_keypoints_val2017.json``), 0-based.
* CrowdPose-14: names from CrowdPose's own annotation file
  (github.com/Jeff-sjtu/CrowdPose, ``crowdpose-api/annotations/crowdpose_val.json``; mmpose
  calls keypoint 12 ``top_head``); sigmas from ``crowdposetools/cocoeval.py`` ``computeOks``
  (``[.79, .79, .72, .72, .62, .62, 1.07, 1.07, .87, .87, .89, .89, .79, .79] / 10``), equal
  to mmpose ``configs/_base_/datasets/crowdpose.py``; flip pairs and skeleton from that mmpose
  file (the annotation file's own ``skeleton`` is COCO's, 1-based, and names points that do
  not exist in a 14-point set).
* COCO-WholeBody-133 (body 17, foot 6, face 68, left hand 21, right hand 21, in that order,
  the order of the official evaluation): sigmas from github.com/jin-s13/COCO-WholeBody
  ``evaluation/myeval_wholebody.py``, equal to mmpose
  ``configs/_base_/datasets/coco_wholebody.py``; names, flip pairs and skeleton from that
  mmpose file.
"""

from __future__ import annotations

# -- COCO-17 ---------------------------------------------------------------------------------------
COCO_NAMES: tuple[str, ...] = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
    "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
)  # fmt: skip

COCO_SIGMAS: tuple[float, ...] = (
    0.026, 0.025, 0.025, 0.035, 0.035, 0.079, 0.079, 0.072, 0.072,
    0.062, 0.062, 0.107, 0.107, 0.087, 0.087, 0.089, 0.089,
)  # fmt: skip

COCO_FLIP_PAIRS: tuple[tuple[str, str], ...] = tuple(
    (COCO_NAMES[i], COCO_NAMES[i + 1]) for i in range(1, 17, 2)
)

COCO_SKELETON: tuple[tuple[int, int], ...] = (
    (15, 13), (13, 11), (16, 14), (14, 12), (11, 12), (5, 11), (6, 12), (5, 6), (5, 7),
    (6, 8), (7, 9), (8, 10), (1, 2), (0, 1), (0, 2), (1, 3), (2, 4), (3, 5), (4, 6),
)  # fmt: skip

# -- CrowdPose-14 ----------------------------------------------------------------------------------
CROWDPOSE_NAMES: tuple[str, ...] = (
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
    "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
    "head", "neck",
)  # fmt: skip

CROWDPOSE_SIGMAS: tuple[float, ...] = (
    0.079, 0.079, 0.072, 0.072, 0.062, 0.062, 0.107, 0.107, 0.087, 0.087, 0.089, 0.089,
    0.079, 0.079,
)  # fmt: skip

CROWDPOSE_FLIP_PAIRS: tuple[tuple[str, str], ...] = tuple(
    (CROWDPOSE_NAMES[i], CROWDPOSE_NAMES[i + 1]) for i in range(0, 12, 2)
)

CROWDPOSE_SKELETON: tuple[tuple[str, str], ...] = (
    ("left_ankle", "left_knee"), ("left_knee", "left_hip"), ("right_ankle", "right_knee"),
    ("right_knee", "right_hip"), ("left_hip", "right_hip"), ("left_shoulder", "left_hip"),
    ("right_shoulder", "right_hip"), ("left_shoulder", "right_shoulder"),
    ("left_shoulder", "left_elbow"), ("right_shoulder", "right_elbow"),
    ("left_elbow", "left_wrist"), ("right_elbow", "right_wrist"), ("head", "neck"),
    ("right_shoulder", "neck"), ("left_shoulder", "neck"),
)  # fmt: skip

#: CrowdPose's ``num_keypoints`` counts labelled keypoints among these first 12 only.
CROWDPOSE_BODY_JOINTS = 12

# -- COCO-WholeBody-133 ----------------------------------------------------------------------------
WHOLEBODY_PARTS: tuple[tuple[str, int], ...] = (
    ("keypoints", 17), ("foot_kpts", 6), ("face_kpts", 68),
    ("lefthand_kpts", 21), ("righthand_kpts", 21),
)  # fmt: skip
"""The annotation keys of COCO-WholeBody's parts and their sizes, in evaluation order."""

_FOOT = ("big_toe", "small_toe", "heel")
_FINGERS = ("thumb", "forefinger", "middle_finger", "ring_finger", "pinky_finger")


def _hand(side: str) -> tuple[str, ...]:
    return (f"{side}_hand_root",) + tuple(f"{side}_{f}{j}" for f in _FINGERS for j in (1, 2, 3, 4))


WHOLEBODY_NAMES: tuple[str, ...] = (
    COCO_NAMES
    + tuple(f"left_{p}" for p in _FOOT)
    + tuple(f"right_{p}" for p in _FOOT)
    + tuple(f"face-{i}" for i in range(68))
    + _hand("left")
    + _hand("right")
)

WHOLEBODY_SIGMAS: tuple[float, ...] = COCO_SIGMAS + (
    # foot
    0.068, 0.066, 0.066, 0.092, 0.094, 0.094,
    # face
    0.042, 0.043, 0.044, 0.043, 0.040, 0.035, 0.031, 0.025, 0.020, 0.023, 0.029, 0.032, 0.037,
    0.038, 0.043, 0.041, 0.045, 0.013, 0.012, 0.011, 0.011, 0.012, 0.012, 0.011, 0.011, 0.013,
    0.015, 0.009, 0.007, 0.007, 0.007, 0.012, 0.009, 0.008, 0.016, 0.010, 0.017, 0.011, 0.009,
    0.011, 0.009, 0.007, 0.013, 0.008, 0.011, 0.012, 0.010, 0.034, 0.008, 0.008, 0.009, 0.008,
    0.008, 0.007, 0.010, 0.008, 0.009, 0.009, 0.009, 0.007, 0.007, 0.008, 0.011, 0.008, 0.008,
    0.008, 0.01, 0.008,
    # left hand
    0.029, 0.022, 0.035, 0.037, 0.047, 0.026, 0.025, 0.024, 0.035, 0.018, 0.024, 0.022, 0.026,
    0.017, 0.021, 0.021, 0.032, 0.02, 0.019, 0.022, 0.031,
    # right hand
    0.029, 0.022, 0.035, 0.037, 0.047, 0.026, 0.025, 0.024, 0.035, 0.018, 0.024, 0.022, 0.026,
    0.017, 0.021, 0.021, 0.032, 0.02, 0.019, 0.022, 0.031,
)  # fmt: skip

# The face's mirror pairs, as indices into the 68 face points (mmpose's "swap" entries).
_FACE_PAIRS: tuple[tuple[int, int], ...] = (
    (0, 16), (1, 15), (2, 14), (3, 13), (4, 12), (5, 11), (6, 10), (7, 9),  # jaw line
    (17, 26), (18, 25), (19, 24), (20, 23), (21, 22),  # eyebrows
    (31, 35), (32, 34),  # nostrils
    (36, 45), (37, 44), (38, 43), (39, 42), (40, 47), (41, 46),  # eyes
    (48, 54), (49, 53), (50, 52), (55, 59), (56, 58), (60, 64), (61, 63), (65, 67),  # mouth
)  # fmt: skip

WHOLEBODY_FLIP_PAIRS: tuple[tuple[str, str], ...] = (
    COCO_FLIP_PAIRS
    + tuple((f"left_{p}", f"right_{p}") for p in _FOOT)
    + tuple((f"face-{a}", f"face-{b}") for a, b in _FACE_PAIRS)
    + tuple(zip(_hand("left"), _hand("right"), strict=True))
)


def _hand_links(side: str) -> tuple[tuple[str, str], ...]:
    links: list[tuple[str, str]] = []
    for f in _FINGERS:
        links.append((f"{side}_hand_root", f"{side}_{f}1"))
        links += [(f"{side}_{f}{j}", f"{side}_{f}{j + 1}") for j in (1, 2, 3)]
    return tuple(links)


WHOLEBODY_SKELETON: tuple[tuple[str, str], ...] = (
    tuple((COCO_NAMES[a], COCO_NAMES[b]) for a, b in COCO_SKELETON)
    + tuple((f"{s}_ankle", f"{s}_{p}") for s in ("left", "right") for p in _FOOT)
    + _hand_links("left")
    + _hand_links("right")
)
