"""Every installed engine gives pycocotools' summary stats and precision, to 1e-9."""

from __future__ import annotations

import numpy as np
import pytest
from metrics_reference import CASES, case, pycoco_eval

from pytest_kpmodel.metrics import evaluate
from pytest_kpmodel.metrics.engines import available_engines, resolve_engine, run_engine
from pytest_kpmodel.metrics.inputs import prepare

ENGINES = available_engines()
TOL = 1e-9


@pytest.fixture(scope="module")
def references():
    """pycocotools' COCOeval per (case, iou type), computed once."""
    out = {}
    for name in CASES:
        gt, results, sigmas, ids = case(name)
        for iou_type in ("bbox", "keypoints"):
            out[name, iou_type] = pycoco_eval(gt, results, iou_type, sigmas, ids)
    return out


def assert_stats_equal(ours, ref, what: str) -> None:
    ours, ref = np.asarray(ours, dtype=float), np.asarray(ref, dtype=float)
    assert ours.shape == ref.shape, what
    assert np.all(np.abs(ours - ref) <= TOL), f"{what}: {ours} != {ref}"


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("name", list(CASES))
def test_engine_matches_pycocotools(references, name, engine):
    gt, results, sigmas, ids = case(name)
    inp = prepare(gt, results, sigmas=sigmas, image_ids=ids)
    runs = run_engine(engine, inp, ["bbox", "keypoints"])
    for iou_type, run in runs.items():
        ref = references[name, iou_type]
        assert_stats_equal(run.stats, ref.stats, f"{name} {iou_type} {engine} stats")
        assert_stats_equal(run.precision, ref.eval["precision"], f"{name} {iou_type} precision")
        assert_stats_equal(run.recall, ref.eval["recall"], f"{name} {iou_type} recall")


@pytest.mark.parametrize("engine", ENGINES)
def test_evaluate_reports_engine_stats_by_name(references, engine):
    gt, results, sigmas, ids = case("coco17")
    m = evaluate(gt, results, engine=engine, bootstrap=0, per_keypoint=False, error_analysis=False)
    assert m.engine == engine
    assert_stats_equal(m.bbox.as_array(), references["coco17", "bbox"].stats, "bbox")
    assert_stats_equal(m.keypoints.as_array(), references["coco17", "keypoints"].stats, "kp")
    assert m.bbox.AP == m.bbox["AP"] == references["coco17", "bbox"].stats[0]
    assert list(m.keypoints) == [
        "AP",
        "AP50",
        "AP75",
        "APm",
        "APl",
        "AR",
        "AR50",
        "AR75",
        "ARm",
        "ARl",
    ]
    assert len(m.bbox) == 12 and m.bbox.ARl == references["coco17", "bbox"].stats[11]


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("where", ["no_results", "results_outside_subset"])
def test_empty_results_follow_pycocotools(engine, where):
    gt, results, _, _ = case("crowds_zero_kp_boundaries")
    ids = [im["id"] for im in gt["images"]][:5]
    if where == "no_results":
        res, ids = [], None
    else:
        res = [r for r in results if r["image_id"] not in set(ids)]
    m = evaluate(gt, res, engine=engine, image_ids=ids, bootstrap=20)
    for iou_type, stats in (("bbox", m.bbox), ("keypoints", m.keypoints)):
        ref = pycoco_eval(gt, [] if where == "no_results" else res, iou_type, image_ids=ids)
        assert_stats_equal(stats.as_array(), ref.stats, f"{where} {iou_type}")
        assert set(stats.as_array().tolist()) <= {0.0, -1.0}
    assert m.bootstrap["keypoints"]["AP"].estimate in (0.0, -1.0)


def test_auto_is_the_fastest_installed_engine():
    assert resolve_engine("auto") == ENGINES[0]
    assert ENGINES[-1] == "pycocotools"


@pytest.mark.parametrize("engine", ENGINES)
def test_result_fields_loadres_overwrites_are_ignored(references, engine):
    """loadRes sets area = w*h, iscrowd = 0 and its own ids; engines must not trust the
    results' values either."""
    gt, results, sigmas, ids = case("crowds_zero_kp_boundaries")
    rng = np.random.default_rng(0)
    noisy = [
        dict(
            r,
            area=float(rng.choice([10.0, 2000.0, 5e4])),
            iscrowd=int(rng.integers(0, 2)),
            id=i * 7 + 3,
        )
        for i, r in enumerate(results)
    ]
    runs = run_engine(
        engine, prepare(gt, noisy, sigmas=sigmas, image_ids=ids), ["bbox", "keypoints"]
    )
    for iou_type, run in runs.items():
        ref = references["crowds_zero_kp_boundaries", iou_type]
        assert_stats_equal(run.stats, ref.stats, f"{iou_type} {engine}")
