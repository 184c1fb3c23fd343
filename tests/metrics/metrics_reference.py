"""pycocotools as the reference, and seeded COCO sets for the metrics tests."""

from __future__ import annotations

import contextlib
import copy
import io
from typing import Any

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from pytest_kpmodel.metrics.accumulate import accumulate_sorted
from pytest_kpmodel.metrics.inputs import EvalInput
from pytest_kpmodel.metrics.layout import Layout
from pytest_kpmodel.metrics.matching import Matches, match
from pytest_kpmodel.metrics.oks import box_exponent, keypoint_exponent, mean_exp
from pytest_kpmodel.metrics.pairs import PairCache
from pytest_kpmodel.metrics.params import AREA_RANGES, IOU_THRS, MAX_DETS, REC_THRS
from pytest_kpmodel.metrics.synthetic import make_coco_set, make_sigmas


def pycoco_eval(
    gt: dict[str, Any],
    results: list[dict[str, Any]],
    iou_type: str,
    sigmas: list[float] | None = None,
    image_ids: list[int] | None = None,
    evaluate_only: bool = False,
) -> COCOeval:
    """pycocotools' COCOeval, run; empty results become a results set without annotations."""
    with contextlib.redirect_stdout(io.StringIO()):
        g = COCO()
        g.dataset = copy.deepcopy(gt)
        g.createIndex()
        if results:
            d = g.loadRes(copy.deepcopy(results))
        else:  # loadRes([]) fails: build what it would build, with no annotations
            d = COCO()
            d.dataset = {
                "images": list(g.dataset["images"]),
                "categories": copy.deepcopy(g.dataset["categories"]),
                "annotations": [],
            }
            d.createIndex()
        e = COCOeval(g, d, iou_type)
        if sigmas is not None:
            e.params.kpt_oks_sigmas = np.asarray(sigmas, dtype=float)
        if image_ids is not None:
            e.params.imgIds = sorted(image_ids)
        e.evaluate()
        if not evaluate_only:
            e.accumulate()
            e.summarize()
    return e


def mask_to_keypoint(gt: dict[str, Any], k: int) -> dict[str, Any]:
    """Ground truth where every annotation keeps only keypoint k."""
    out = copy.deepcopy(gt)
    for a in out["annotations"]:
        kp = a["keypoints"]
        keep = kp[3 * k : 3 * k + 3]
        a["keypoints"] = [0.0] * len(kp)
        a["keypoints"][3 * k : 3 * k + 3] = keep
        a["num_keypoints"] = int(keep[2] > 0)
    return out


# name -> (make_coco_set kwargs, sigmas seed or None for COCO-17, image subset stride or None)
CASES: dict[str, tuple[dict[str, Any], bool, int | None]] = {
    "coco17": (dict(seed=1, num_images=40), False, None),
    "custom5_two_categories": (
        dict(seed=2, num_images=40, num_keypoints=5, num_categories=2),
        True,
        None,
    ),
    "single_keypoint": (dict(seed=3, num_images=30, num_keypoints=1), True, None),
    "ties_many_dets": (
        dict(seed=4, num_images=30, score_decimals=1, tie_rate=0.6, many_dets_rate=0.25),
        False,
        None,
    ),
    "crowds_zero_kp_boundaries": (
        dict(seed=5, num_images=40, crowd_rate=0.3, zero_kp_rate=0.3, boundary_rate=0.4),
        False,
        None,
    ),
    "empty_images_subset": (dict(seed=6, num_images=50, empty_image_rate=0.5), False, 3),
    "k26_three_categories": (
        dict(seed=7, num_images=30, num_keypoints=26, num_categories=3),
        True,
        None,
    ),
}


def case(
    name: str,
) -> tuple[dict[str, Any], list[dict[str, Any]], list[float] | None, list[int] | None]:
    kwargs, custom_sigmas, stride = CASES[name]
    gt, results = make_coco_set(**kwargs)
    k = kwargs.get("num_keypoints", 17)
    sigmas = make_sigmas(k, kwargs["seed"]) if custom_sigmas else None
    ids = [im["id"] for im in gt["images"]][::stride] if stride else None
    return gt, results, sigmas, ids


def pair_oks(inp: EvalInput, layout: Layout) -> np.ndarray:
    """computeOks for every (det, gt) pair of ``layout``, row group by row group: the plain
    path that PairCache.oks must equal."""
    g, d = inp.gts, inp.dets
    assert g.keypoints is not None and d.keypoints is not None
    pd, pg = layout.det[layout.pair_d], layout.gt[layout.pair_g]
    gkp = g.keypoints[pg]
    vis = gkp[:, :, 2] > 0
    labelled = vis.any(axis=1)
    out = np.empty(len(pd))
    if labelled.any():
        e = keypoint_exponent(
            d.keypoints[pd[labelled]], gkp[labelled], g.area[pg[labelled]], inp.sigmas
        )
        out[labelled] = mean_exp(e, vis[labelled])
    if (~labelled).any():
        nl = ~labelled
        e = box_exponent(d.keypoints[pd[nl]], g.bbox[pg[nl]], g.area[pg[nl]], inp.sigmas)
        out[nl] = mean_exp(e)
    return out


def our_matches(cache: PairCache, iou_type: str, cat: int, area: list[float]) -> Matches:
    """The numpy evaluateImg for every image, as the analyses run it."""
    inp = cache.inp
    g = inp.gts
    md = MAX_DETS[iou_type][-1]
    lay = cache.layout(cat, md)
    sim = cache.iou(cat, md) if iou_type == "bbox" else cache.oks(cat, md)
    ignore = g.iscrowd[lay.gt].copy()
    if iou_type == "keypoints":
        ignore |= g.num_keypoints[lay.gt] == 0
    ga, da = g.area[lay.gt], inp.dets.area[lay.det]
    ignore |= (ga < area[0]) | (ga > area[1])
    outside = (da < area[0]) | (da > area[1])
    return match(lay, sim, ignore, g.iscrowd[lay.gt], outside, IOU_THRS, inp.dets.score[lay.det])


def assert_matches_evalimgs(cache: PairCache, ref: COCOeval, iou_type: str) -> None:
    """Per image, category and area range: same detections, matches and ignore flags as
    pycocotools' evalImgs; and, at area all, the same accumulated precision and recall."""
    inp = cache.inp
    n_img = len(inp.image_ids)
    ranges, _ = AREA_RANGES[iou_type]
    for ki, cat in enumerate(inp.cat_ids):
        for ai, area in enumerate(ranges):
            m = our_matches(cache, iou_type, cat, area)
            lay = m.layout
            for i in range(n_img):
                ev = ref.evalImgs[ki * len(ranges) * n_img + ai * n_img + i]
                if ev is None:
                    assert lay.d_count[i] == 0 and lay.g_count[i] == 0
                    continue
                ds = slice(lay.d_start[i], lay.d_start[i] + lay.d_count[i])
                assert (inp.dets.index[lay.det[ds]] + 1).tolist() == ev["dtIds"]
                gm = m.gt_match[:, ds]
                ids = inp.gts.id[lay.gt] if len(lay.gt) else np.zeros(1, dtype=np.int64)
                dtm = np.where(gm >= 0, ids[np.maximum(gm, 0)], 0)
                assert np.array_equal(dtm, ev["dtMatches"]), (iou_type, cat, area, i)
                assert np.array_equal(m.det_ignore[:, ds], ev["dtIgnore"]), (iou_type, cat, area, i)
                gs = slice(lay.g_start[i], lay.g_start[i] + lay.g_count[i])
                ours = dict(
                    zip(inp.gts.id[lay.gt[gs]].tolist(), m.gt_ignore[gs].tolist(), strict=True)
                )
                theirs = dict(zip(ev["gtIds"], (bool(x) for x in ev["gtIgnore"]), strict=True))
                assert ours == theirs
            if ai or "precision" not in ref.eval:
                continue
            npig = int(m.npig_per_image().sum())
            if npig == 0:
                assert (ref.eval["precision"][:, :, ki, 0, -1] == -1).all()
                continue
            order = np.argsort(-m.score, kind="mergesort")  # accumulate's order
            tp, fp = m.tp_fp()
            p, r = accumulate_sorted(tp[:, order], fp[:, order], npig, REC_THRS)
            assert np.array_equal(p, ref.eval["precision"][:, :, ki, 0, -1])
            assert np.array_equal(r, ref.eval["recall"][:, ki, 0, -1])
