"""Bootstrap replicates are pycocotools' accumulate over the drawn images; intervals are
seeded and bracket the estimate."""

from __future__ import annotations

import numpy as np
from metrics_reference import pycoco_eval

from pytest_kpmodel.metrics import bootstrap as metrics_bootstrap
from pytest_kpmodel.metrics.accumulate import accumulate_sorted
from pytest_kpmodel.metrics.inputs import prepare
from pytest_kpmodel.metrics.pairs import PairCache
from pytest_kpmodel.metrics.params import AREA_RANGES, REC_THRS
from pytest_kpmodel.metrics.synthetic import make_coco_set


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


def test_recall_counts_compare_like_float_recall():
    """``tp < m`` exactly when ``tp / npig < thr`` in floats, for every count up to npig."""
    npig = np.arange(1, 2500, dtype=np.float64)
    need = metrics_bootstrap._recall_counts(npig)
    for total, m in zip(npig, need, strict=True):
        tp = np.arange(int(total) + 1, dtype=np.float64)
        below = (tp / total)[:, None] < REC_THRS[None, :]
        assert np.array_equal(below, tp[:, None] < m[None, :]), total


def test_suffix_max_at_equals_a_running_maximum_from_the_right():
    rng = np.random.default_rng(3)
    for n in (1, 2, 7, 300):
        values = rng.random((5, n))
        at = np.sort(rng.integers(0, n, size=(5, 101)), axis=1)  # repeats and ends included
        at[0] = n - 1
        at[1] = 0
        env = np.maximum.accumulate(values[:, ::-1], axis=1)[:, ::-1]
        got = metrics_bootstrap._suffix_max_at(values, at, n * np.arange(1, 6))
        assert np.array_equal(got, np.take_along_axis(env, at, axis=1))


def _assert_replicates_equal_weighted_accumulate(cat, counts: np.ndarray) -> None:
    """Each replicate row equals accumulate with every detection weighted by its image's count."""
    npig = counts @ cat.npig.astype(np.float64)
    ours = metrics_bootstrap._replicate_precisions(cat, counts, npig)
    for b in range(len(counts)):
        full, _ = accumulate_sorted(
            cat.tp, cat.fp, float(npig[b]), REC_THRS, counts[b][cat.img].astype(float)
        )
        assert np.array_equal(ours[b], full)


def test_long_and_short_rows_equal_weighted_accumulate():
    """Rows longer than 8 x 101 true positives take the integer search and the reduceat
    envelope, shorter ones the bincount search: both equal accumulate with the weights."""
    gt, results = make_coco_set(21, num_images=500, dets_per_person=2.0)
    inp = prepare(gt, results)
    cache = PairCache(inp)
    rng = np.random.default_rng(1)
    n_img = len(inp.image_ids)
    for iou_type in ("bbox", "keypoints"):
        (cat,) = metrics_bootstrap._prepare(cache, iou_type)
        assert cat.tp_count.max() > 8 * len(REC_THRS) > cat.tp_count.min()  # both paths
        counts = np.stack(
            [np.bincount(rng.integers(0, n_img, n_img), minlength=n_img) for _ in range(4)]
        )
        _assert_replicates_equal_weighted_accumulate(cat, counts)


def test_weights_too_large_for_int32_are_summed_in_int64():
    gt, results = make_coco_set(12, num_images=20)
    inp = prepare(gt, results)
    (cat,) = metrics_bootstrap._prepare(PairCache(inp), "keypoints")
    rng = np.random.default_rng(2)
    counts = rng.integers(0, 3, size=(3, len(inp.image_ids))) * 10**8  # sums past 2**31
    assert int(counts.max()) * len(cat.img) > 2**31
    _assert_replicates_equal_weighted_accumulate(cat, counts)
