"""The numpy per-image evaluation equals pycocotools' evalImgs and accumulate bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
from metrics_reference import assert_matches_evalimgs, case, mask_to_keypoint, pair_oks, pycoco_eval

from pytest_kpmodel.metrics import analysis as metrics_analysis
from pytest_kpmodel.metrics import bootstrap as metrics_bootstrap
from pytest_kpmodel.metrics.accumulate import accumulate_sorted
from pytest_kpmodel.metrics.inputs import prepare
from pytest_kpmodel.metrics.pairs import PairCache
from pytest_kpmodel.metrics.params import AREA_RANGES, REC_THRS
from pytest_kpmodel.metrics.synthetic import make_coco_set


@pytest.mark.parametrize(
    "name", ["coco17", "custom5_two_categories", "ties_many_dets", "empty_images_subset"]
)
def test_per_image_evaluation_equals_evalimgs(name):
    gt, results, sigmas, ids = case(name)
    inp = prepare(gt, results, sigmas=sigmas, image_ids=ids)
    cache = PairCache(inp)
    lay = cache.layout(inp.cat_ids[0], 20)
    assert np.array_equal(cache.oks(inp.cat_ids[0], 20), pair_oks(inp, lay))
    for iou_type in ("bbox", "keypoints"):
        assert_matches_evalimgs(cache, pycoco_eval(gt, results, iou_type, sigmas, ids), iou_type)


def test_per_keypoint_ap_equals_pycocotools_on_masked_ground_truth():
    gt, results = make_coco_set(
        11, num_images=25, num_keypoints=4, crowd_rate=0.15, zero_kp_rate=0.2
    )
    sigmas = [0.03, 0.05, 0.08, 0.1]
    inp = prepare(gt, results, sigmas=sigmas)
    ours = metrics_analysis.per_keypoint_ap(PairCache(inp))
    for k in range(4):
        ref = pycoco_eval(mask_to_keypoint(gt, k), results, "keypoints", sigmas)
        assert abs(ours.ap[k] - ref.stats[0]) <= 1e-12
        assert abs(ours.ap50[k] - ref.stats[1]) <= 1e-12
        assert abs(ours.ap75[k] - ref.stats[2]) <= 1e-12


def test_bootstrap_replicate_equals_accumulate_over_resampled_image_list():
    """A replicate is pycocotools' accumulate over the drawn images, duplicates included."""
    gt, results = make_coco_set(12, num_images=20, tie_rate=0.0)  # no score ties in an image
    inp = prepare(gt, results)
    cache = PairCache(inp)
    rng = np.random.default_rng(0)
    for iou_type in ("bbox", "keypoints"):
        ref = pycoco_eval(gt, results, iou_type, evaluate_only=True)
        (cat,) = metrics_bootstrap._prepare(cache, iou_type)
        n_img = len(inp.image_ids)
        for _ in range(3):
            draw = np.sort(rng.integers(0, n_img, size=n_img))
            counts = np.bincount(draw, minlength=n_img).astype(float)
            ours = metrics_bootstrap._replicate_precision(cat, counts, float(counts @ cat.npig))
            full, _ = accumulate_sorted(
                cat.tp, cat.fp, float(counts @ cat.npig), REC_THRS, counts[cat.img]
            )
            assert np.array_equal(ours, full)
            # pycocotools: the evalImgs of the drawn images, area "all", in draw order
            n_areas = len(AREA_RANGES[iou_type][0])
            ref.evalImgs = [ref.evalImgs[a * n_img + i] for a in range(n_areas) for i in draw]
            ref._paramsEval.imgIds = [inp.image_ids[i] for i in draw]
            ref.params.imgIds = ref._paramsEval.imgIds
            ref.accumulate()
            assert np.array_equal(ours, ref.eval["precision"][:, :, 0, 0, -1])
            ref = pycoco_eval(gt, results, iou_type, evaluate_only=True)


def test_bootstrap_is_seeded_and_brackets_the_estimate():
    gt, results = make_coco_set(13, num_images=40)
    inp = prepare(gt, results)
    a = metrics_bootstrap.bootstrap(inp, ["bbox", "keypoints"], replicates=30, seed=5)
    b = metrics_bootstrap.bootstrap(inp, ["bbox", "keypoints"], replicates=30, seed=5)
    c = metrics_bootstrap.bootstrap(inp, ["bbox", "keypoints"], replicates=30, seed=6)
    assert a == b and a != c
    for t in ("bbox", "keypoints"):
        ref = pycoco_eval(gt, results, t)
        for j, stat in enumerate(("AP", "AP50", "AP75")):
            iv = a[t][stat]
            assert abs(iv.estimate - ref.stats[j]) <= 1e-12
            assert iv.low <= iv.high and iv.std > 0
            assert iv.low - 0.05 <= iv.estimate <= iv.high + 0.05
