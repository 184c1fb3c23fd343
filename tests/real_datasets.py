"""Small ground truths with the structure and quirks of public keypoint datasets.

Written for these tests (no file of those datasets is copied): each function turns a seeded
synthetic set (``metrics.synthetic.make_coco_set``) into the layout of one dataset, keys and
quirks as in its published annotation files:

* CrowdPose: 14 keypoints (COCO's 12 body joints, then head and neck), ``num_keypoints``
  counting only the first 12, people with only head/neck labelled (num_keypoints 0), no
  ``area`` key, ``crowdIndex`` on images, the category's ``skeleton`` copied from COCO's
  (1-based, naming points a 14-point set does not have).
* OCHuman: COCO-17 with ``area`` equal to the box w*h on every annotation.
* HumanArt: the category lists 21 names; ``keypoints`` holds COCO's 17, ``keypoints_21`` the
  21 (with ``num_keypoints_21``), plus ``self_contact`` and ``annotator`` keys.
* COCO-WholeBody: COCO-17 in ``keypoints`` (and the category's 17 names), the other parts in
  ``foot_kpts`` (6), ``face_kpts`` (68), ``lefthand_kpts`` / ``righthand_kpts`` (21), with
  ``*_valid`` flags and ``*_box`` boxes, fractional visibility on hand points, all-zero parts
  when invalid.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

from pytest_kpmodel.keypoints import COCO_NAMES, CROWDPOSE14
from pytest_kpmodel.metrics.synthetic import make_coco_set

COCO_SKELETON_1BASED = [
    [16, 14], [14, 12], [17, 15], [15, 13], [12, 13], [6, 12], [7, 13], [6, 7], [6, 8],
    [7, 9], [8, 10], [9, 11], [2, 3], [1, 2], [1, 3], [2, 4], [3, 5], [4, 6], [5, 7],
]  # fmt: skip


def crowdpose_like(seed: int = 0, num_images: int = 20) -> tuple[dict, list]:
    gt, results = make_coco_set(seed, num_images=num_images, num_keypoints=14, crowd_rate=0.03)
    rng = np.random.default_rng(seed + 100)
    gt["categories"] = [
        {"supercategory": "person", "id": 1, "name": "person",
         "keypoints": list(CROWDPOSE14.names), "skeleton": COCO_SKELETON_1BASED}
    ]  # fmt: skip
    for im in gt["images"]:
        im["crowdIndex"] = round(float(rng.uniform(0, 1)), 2)
    for a in gt["annotations"]:
        kp = a["keypoints"]
        if not a["iscrowd"] and rng.random() < 0.12:  # only head and neck labelled
            for j in range(12):
                kp[3 * j : 3 * j + 3] = [0.0, 0.0, 0]
            x, y, w, h = a["bbox"]
            kp[36:42] = [x + w / 2, y + 2.0, 2, x + w / 2, y + h / 5, 1]
        a["num_keypoints"] = int(sum(v > 0 for v in kp[2:36:3]))
        del a["area"]
    return gt, results


def ochuman_like(seed: int = 0, num_images: int = 10) -> tuple[dict, list]:
    gt, results = make_coco_set(seed, num_images=num_images, crowd_rate=0.0)
    gt["categories"][0]["keypoints"] = list(COCO_NAMES)
    for a in gt["annotations"]:
        a["area"] = a["bbox"][2] * a["bbox"][3]
        x, y, w, h = a["bbox"]
        a["segmentation"] = [[x, y, x + w, y, x + w / 2, y + h]]
    return gt, results


def humanart_like(seed: int = 0, num_images: int = 6) -> tuple[dict, list]:
    gt, results = make_coco_set(seed, num_images=num_images, crowd_rate=0.0, zero_kp_rate=0.0)
    extra = ["left_finger", "right_finger", "left_toe", "right_toe"]
    gt["categories"][0]["keypoints"] = list(COCO_NAMES) + extra
    rng = np.random.default_rng(seed + 200)
    for a in gt["annotations"]:
        more = [float(v) for v in rng.uniform(0, 50, size=(4, 2)).round(2).ravel()]
        a["keypoints_21"] = list(a["keypoints"]) + [
            v for j in range(4) for v in (more[2 * j], more[2 * j + 1], 2)
        ]
        a["num_keypoints_21"] = a["num_keypoints"] + 4
        a["self_contact"] = []
        a["annotator"] = 66705
    return gt, results


PARTS = (("foot", 6), ("face", 68), ("lefthand", 21), ("righthand", 21))


def wholebody_like(seed: int = 0, num_images: int = 8) -> tuple[dict, list]:
    """The ground truth, and results with the 133 keypoints in 'keypoints' (what a
    133-keypoint model's predictions become)."""
    gt, results = make_coco_set(seed, num_images=num_images, crowd_rate=0.05)
    gt["categories"][0]["keypoints"] = list(COCO_NAMES)
    rng = np.random.default_rng(seed + 300)
    for a in gt["annotations"]:
        x, y, w, h = a["bbox"]
        for part, n in PARTS:
            valid = not a["iscrowd"] and rng.random() < 0.7
            a[f"{part}_valid"] = bool(valid)
            if part != "foot":
                a[f"{part}_box"] = [x, y, w / 4, h / 4] if valid else [0.0, 0.0, 0.0, 0.0]
            if not valid:
                a[f"{part}_kpts"] = [0.0] * (3 * n)
                continue
            pts = []
            for _ in range(n):
                px, py = float(x + rng.uniform(0, w)), float(y + rng.uniform(0, h))
                # hands carry the annotation tool's confidence as a fractional visibility
                v = float(rng.uniform(0.01, 0.7)) if "hand" in part and rng.random() < 0.3 else 1
                pts += [round(px, 2), round(py, 2), v]
            a[f"{part}_kpts"] = pts
    by_image: dict[int, list] = {}
    for a in gt["annotations"]:
        by_image.setdefault(a["image_id"], []).append(a)
    wb_results = []
    for r in results:
        cands = by_image.get(r["image_id"], [])
        extra = []
        source = cands[int(rng.integers(len(cands)))] if cands else None
        for part, n in PARTS:
            if source is not None:
                vals = np.asarray(source[f"{part}_kpts"], dtype=float).reshape(n, 3)
                vals[:, :2] += rng.normal(0, 3, size=(n, 2))
            else:
                vals = np.concatenate([rng.uniform(0, 400, size=(n, 2)), np.ones((n, 1))], 1)
            vals[:, 2] = rng.uniform(0, 1, size=n)
            extra += vals.ravel().tolist()
        wb_results.append({**r, "keypoints": list(r["keypoints"]) + extra})
    return gt, wb_results


def deep(x: Any) -> Any:
    return copy.deepcopy(x)
