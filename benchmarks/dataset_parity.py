"""The plugin's evaluation of CrowdPose and COCO-WholeBody files against those datasets' own
evaluation code (not in CI: that code is not on PyPI and is not shipped here).

    # CrowdPose: crowdposetools from github.com/Jeff-sjtu/CrowdPose (crowdpose-api/PythonAPI)
    .venv/bin/python benchmarks/dataset_parity.py crowdpose \\
        --annotations CrowdPose/crowdpose-api/annotations/crowdpose_val.json \\
        --code CrowdPose/crowdpose-api/PythonAPI
    # COCO-WholeBody: evaluation/ of github.com/jin-s13/COCO-WholeBody
    .venv/bin/python benchmarks/dataset_parity.py wholebody \\
        --annotations COCO-WholeBody/evaluation/example_gt.json \\
        --predictions COCO-WholeBody/evaluation/example_pred.json \\
        --code COCO-WholeBody/evaluation

``--code`` is the folder holding the dataset's evaluation module as published; it is imported
as is, with two shims for today's Python and numpy (``unicode``, ``np.float``) and, for
crowdposetools, a stand-in for its compiled ``mask`` module (only segmentation uses it).

CrowdPose: predictions are the ground truth with seeded noise (plus misses and false
positives); the plugin reads the file as ``preset = "crowdpose14"`` with ``area_from_box =
0.53`` (what crowdposetools does with the box) and evaluates with each installed engine;
crowdposetools' AP, AP50, AP75, AR, AR50, AR75 (area "all") are printed beside it.
COCO-WholeBody: the official predictions' five parts joined into 133 keypoints (boxes from the
body keypoints' extent, as pycocotools' ``loadRes`` derives them), the file read as the plugin
reads it with ``preset = "coco_wholebody133"``, against ``MYeval_wholebody``'s 10 stats.
"""

from __future__ import annotations

import argparse
import builtins
import contextlib
import copy
import io
import json
import sys
import types
from pathlib import Path

import numpy as np

from pytest_kpmodel.data_layouts import assemble_wholebody, fill_missing_areas
from pytest_kpmodel.keypoints import COCO_WHOLEBODY133, CROWDPOSE14
from pytest_kpmodel.metrics import available_engines, evaluate
from pytest_kpmodel.metrics.inputs import check_ground_truth

FAST = dict(bootstrap=0, per_keypoint=False, error_analysis=False)
KP_STATS = ("AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl")


def _shims() -> None:
    builtins.unicode = str  # type: ignore[attr-defined]  # crowdposetools' Python 2 check
    if not hasattr(np, "float"):
        np.float = float  # type: ignore[attr-defined]  # removed in numpy 1.24


def crowdpose(args: argparse.Namespace) -> None:
    _shims()
    sys.path.insert(0, str(Path(args.code).resolve()))
    sys.modules["crowdposetools.mask"] = types.ModuleType("crowdposetools.mask")
    from crowdposetools.coco import COCO
    from crowdposetools.cocoeval import COCOeval

    gt = json.loads(Path(args.annotations).read_text())
    rng = np.random.default_rng(args.seed)
    results = []
    for a in gt["annotations"]:
        if rng.random() < 0.15:
            continue
        kp = np.asarray(a["keypoints"], dtype=float).reshape(-1, 3)
        x, y, w, h = a["bbox"]
        kp[:, 0] += rng.normal(0, 0.05 * w + 1, len(kp))
        kp[:, 1] += rng.normal(0, 0.05 * h + 1, len(kp))
        kp[kp[:, 2] == 0, :2] = (x + w / 2, y + h / 2)
        kp[:, 2] = 1
        results.append({"image_id": a["image_id"], "category_id": 1, "bbox": a["bbox"],
                        "score": float(rng.random()), "keypoints": kp.ravel().tolist()})  # fmt: skip
    for im in gt["images"][: len(gt["images"]) // 5]:
        x, y = rng.uniform(0, 300, 2)
        kp = np.stack([x + rng.uniform(0, 80, 14), y + rng.uniform(0, 200, 14), np.ones(14)], 1)
        results.append({"image_id": im["id"], "category_id": 1, "bbox": [x, y, 80.0, 200.0],
                        "score": float(rng.random() * 0.5), "keypoints": kp.ravel().tolist()})  # fmt: skip
    filled, note = fill_missing_areas(gt, 0.53)
    print(f"{len(gt['images'])} images, {len(gt['annotations'])} people, {len(results)} results")
    for line in [note, *check_ground_truth(filled, CROWDPOSE14)]:
        print("note:", line[:160] + ("..." if len(line) > 160 else ""))
    with contextlib.redirect_stdout(io.StringIO()):
        cg = COCO(args.annotations)
        e = COCOeval(cg, cg.loadRes(copy.deepcopy(results)), "keypoints")
        e.evaluate()
        e.accumulate()
    p, r = e.eval["precision"][:, :, :, 0, -1], e.eval["recall"][:, :, 0, -1]

    def mean(a: np.ndarray) -> float:
        return float(a[a > -1].mean())

    theirs = {"AP": mean(p), "AP50": mean(p[0]), "AP75": mean(p[5]),
              "AR": mean(r), "AR50": mean(r[0]), "AR75": mean(r[5])}  # fmt: skip
    ours = {
        eng: evaluate(filled, results, sigmas=CROWDPOSE14.sigmas, engine=eng, **FAST).keypoints
        for eng in available_engines()
    }
    print(f"{'stat':6}{'crowdposetools':>16}" + "".join(f"{eng:>24}" for eng in ours))
    for stat, value in theirs.items():
        cells = "".join(f"{ours[eng][stat]:>16.12f} ({abs(ours[eng][stat] - value):.0e})"
                        for eng in ours)  # fmt: skip
        print(f"{stat:6}{value:>16.12f}{cells}")


def wholebody(args: argparse.Namespace) -> None:
    _shims()
    sys.path.insert(0, str(Path(args.code).resolve()))
    from myeval_wholebody import MYeval_wholebody
    from pycocotools.coco import COCO

    preds = json.loads(Path(args.predictions).read_text())
    with contextlib.redirect_stdout(io.StringIO()):
        g = COCO(args.annotations)
        d = g.loadRes(copy.deepcopy(preds))
        for ann in d.anns.values():  # what the official script does when the score is absent
            ann.setdefault("wholebody_score", ann["score"])
        e = MYeval_wholebody(g, d, "keypoints")
        e.params.useSegm = None
        e.evaluate()
        e.accumulate()
        e.summarize()
    wb, note = assemble_wholebody(json.loads(Path(args.annotations).read_text()))
    results = []
    for q in preds:
        kp = q["keypoints"] + q["foot_kpts"] + q["face_kpts"]
        kp += q["lefthand_kpts"] + q["righthand_kpts"]
        xs, ys = q["keypoints"][0::3], q["keypoints"][1::3]  # loadRes: from the body's 17
        box = [min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)]
        results.append({"image_id": q["image_id"], "category_id": q["category_id"],
                        "score": q["score"], "bbox": box, "keypoints": kp})  # fmt: skip
    dropped = sum(1 for r in results if not any(v > 0 for v in r["keypoints"][2::3]))
    print(f"{len(wb['images'])} images, {len(wb['annotations'])} people, {len(results)} results "
          f"({dropped} with every keypoint score 0, which the official script drops)")  # fmt: skip
    print("note:", note)
    kept = [r for r in results if any(v > 0 for v in r["keypoints"][2::3])]
    ks = COCO_WHOLEBODY133
    for line in check_ground_truth(wb, ks):
        print("note:", line)
    ours = {eng: evaluate(wb, kept, sigmas=ks.sigmas, engine=eng, **FAST).keypoints
            for eng in available_engines()}  # fmt: skip
    print(f"{'stat':6}{'official':>16}" + "".join(f"{eng:>24}" for eng in ours))
    for i, stat in enumerate(KP_STATS):
        value = float(e.stats[i])
        cells = "".join(f"{ours[eng][stat]:>16.12f} ({abs(ours[eng][stat] - value):.0e})"
                        for eng in ours)  # fmt: skip
        print(f"{stat:6}{value:>16.12f}{cells}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="dataset", required=True)
    c = sub.add_parser("crowdpose")
    c.add_argument("--annotations", required=True, help="a CrowdPose annotation file")
    c.add_argument("--code", required=True, help="the folder holding crowdposetools/")
    c.add_argument("--seed", type=int, default=0)
    w = sub.add_parser("wholebody")
    w.add_argument("--annotations", required=True, help="a COCO-WholeBody annotation file")
    w.add_argument("--predictions", required=True, help="COCO-WholeBody results for it")
    w.add_argument("--code", required=True, help="the folder holding myeval_wholebody.py")
    args = ap.parse_args()
    {"crowdpose": crowdpose, "wholebody": wholebody}[args.dataset](args)


if __name__ == "__main__":
    main()
