"""The one OKS formula equals pycocotools' computeOks bit for bit, in both of its branches."""

from __future__ import annotations

import contextlib
import io

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from pytest_kpmodel.metrics.oks import box_exponent, keypoint_exponent, mean_exp, oks

K = 5
SIGMAS = np.asarray([0.026, 0.079, 0.035, 0.107, 0.062])


def _image(seed: int) -> tuple[dict, list[dict]]:
    """One image: ground truths with all, some and no keypoints labelled, and detections."""
    rng = np.random.default_rng(seed)
    anns, dets = [], []
    for i, n_lab in enumerate((K, 2, 0, 1)):
        x, y, w, h = (float(v) for v in rng.uniform([0, 0, 20, 30], [200, 200, 120, 160]))
        kp = np.zeros((K, 3))
        kp[:, 0] = x + rng.uniform(0, w, K)
        kp[:, 1] = y + rng.uniform(0, h, K)
        kp[rng.permutation(K)[:n_lab], 2] = 2
        kp[kp[:, 2] == 0, :2] = 0
        anns.append({
            "id": i + 1, "image_id": 1, "category_id": 1, "iscrowd": 0, "bbox": [x, y, w, h],
            "area": float(w * h * rng.uniform(0.3, 0.9)), "num_keypoints": int(n_lab),
            "keypoints": kp.reshape(-1).tolist(),
        })  # fmt: skip
    for j in range(6):
        pts = rng.uniform(-50, 350, (K, 2))
        kp = np.concatenate([pts, rng.uniform(0, 1, (K, 1))], 1)
        x0, y0 = pts.min(0)
        w, h = pts.max(0) - pts.min(0)
        dets.append({
            "image_id": 1, "category_id": 1, "score": 0.9 - 0.1 * j,
            "bbox": [float(x0), float(y0), float(w), float(h)], "keypoints": kp.reshape(-1).tolist(),
        })  # fmt: skip
    gt = {
        "images": [{"id": 1, "width": 400, "height": 400}],
        "annotations": anns,
        "categories": [{"id": 1, "name": "person", "keypoints": [f"k{i}" for i in range(K)]}],
    }
    return gt, dets


def _compute_oks(gt: dict, dets: list[dict]) -> np.ndarray:
    """pycocotools' computeOks [D, G] (detections in descending score order)."""
    with contextlib.redirect_stdout(io.StringIO()):
        g = COCO()
        g.dataset = gt
        g.createIndex()
        e = COCOeval(g, g.loadRes(dets), "keypoints")
    e.params.kpt_oks_sigmas = SIGMAS
    e._prepare()
    return np.asarray(e.computeOks(1, 1))


def test_oks_equals_compute_oks_in_both_branches():
    for seed in range(5):
        gt, dets = _image(seed)
        ref = _compute_oks(gt, dets)
        dk = np.asarray([d["keypoints"] for d in dets]).reshape(-1, K, 3)
        for g, a in enumerate(gt["annotations"]):
            gk = np.asarray(a["keypoints"]).reshape(K, 3)
            labelled = gk[:, 2] > 0
            if labelled.any():
                ours = oks(dk, gk, np.full(len(dk), a["area"]), SIGMAS, labelled)
            else:
                box = np.asarray(a["bbox"])
                ours = mean_exp(box_exponent(dk, box, np.full(len(dk), a["area"]), SIGMAS))
            assert np.array_equal(ours, ref[:, g]), (seed, g)


def test_broadcasting_and_dtypes_give_the_same_values():
    rng = np.random.default_rng(3)
    ref, det = rng.uniform(0, 100, (4, K, 2)), rng.uniform(0, 100, (3, K, 2))
    area = rng.uniform(500, 5000, 4)
    table = oks(det[None], ref[:, None], area[:, None], SIGMAS)  # [4, 3]
    for i in range(4):
        for j in range(3):
            assert table[i, j] == oks(det[j], ref[i], area[i], SIGMAS)
    e32 = keypoint_exponent(det.astype(np.float32)[0], ref[0], area[0], SIGMAS)
    assert e32.dtype == np.float64
    none = oks(det[0], ref[0], area[0], SIGMAS, np.zeros(K, dtype=bool))
    assert none == 0.0
