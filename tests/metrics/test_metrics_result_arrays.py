"""ResultArrays (the results as kp_eval hands them over: dicts plus their columns) evaluate
exactly as the same plain dicts, and a bad value is refused with the same message."""

from __future__ import annotations

import numpy as np
import pytest

from pytest_kpmodel.errors import DatasetError
from pytest_kpmodel.metrics import evaluate
from pytest_kpmodel.metrics.detections import ResultArrays
from pytest_kpmodel.metrics.engines import _hotcoco_results, available_engines
from pytest_kpmodel.metrics.inputs import prepare
from pytest_kpmodel.metrics.synthetic import make_coco_set


def as_arrays(results: list[dict]) -> ResultArrays:
    n = len(results)
    return ResultArrays.from_columns(
        np.array([r["image_id"] for r in results]),
        1,
        np.array([r["bbox"] for r in results]).reshape(n, 4),
        np.array([r["score"] for r in results]),
        np.array([r["keypoints"] for r in results]).reshape(n, -1, 3),
    )


@pytest.mark.parametrize("subset", [False, True])
def test_same_inputs_and_metrics_as_plain_dicts(subset):
    gt, results = make_coco_set(5, num_images=40)
    arrays = as_arrays(results)
    assert list(arrays) == results  # the dicts hold the columns' values
    ids = [im["id"] for im in gt["images"]][::3] if subset else None
    a, b = prepare(gt, results, image_ids=ids), prepare(gt, arrays, image_ids=ids)
    assert (a.evaluated_results, a.ignored_results) == (b.evaluated_results, b.ignored_results)
    for name in ("index", "img", "cat", "bbox", "area", "score", "keypoints"):
        assert np.array_equal(getattr(a.dets, name), getattr(b.dets, name)), name
    ma, mb = evaluate(gt, results, image_ids=ids), evaluate(gt, arrays, image_ids=ids)
    assert ma.to_json() == mb.to_json()


@pytest.mark.parametrize(
    ("column", "row", "value", "message"),
    [
        ("score", 3, np.nan, "'score' must be a finite number"),
        ("bbox", 2, -5.0, "negative width or height"),
        ("image_id", 1, 10**9, "is not in the ground truth's images"),
    ],
)
def test_bad_value_named_as_for_dicts(column, row, value, message):
    gt, results = make_coco_set(6, num_images=10)
    results = [dict(r, bbox=list(r["bbox"])) for r in results]
    if column == "bbox":
        results[row]["bbox"][2] = value
    else:
        results[row][column] = int(value) if column == "image_id" else value
    with pytest.raises(DatasetError, match=message) as plain:
        prepare(gt, results)
    with pytest.raises(DatasetError, match=message) as columns:
        prepare(gt, as_arrays(results))
    assert str(plain.value) == str(columns.value)


def test_appended_result_is_not_hidden_by_stale_columns():
    """Columns that no longer match the list (a result appended) are not trusted."""
    gt, results = make_coco_set(7, num_images=10)
    arrays = as_arrays(results)
    arrays.append(dict(results[0], score=float("inf")))
    with pytest.raises(DatasetError, match="'score' must be a finite number"):
        prepare(gt, arrays)


@pytest.mark.parametrize("engine", available_engines())
@pytest.mark.parametrize("iou_types", [["bbox"], ["keypoints"], ["bbox", "keypoints"]])
def test_every_engine_scores_columns_as_pycocotools_scores_dicts(engine, iou_types):
    """hotcoco reads box-only columns as its array form: same stats as pycocotools on dicts
    (crowds, an image subset, results on images outside it)."""
    gt, results = make_coco_set(8, num_images=60, crowd_rate=0.2)
    ids = [im["id"] for im in gt["images"]][::2]
    fast = dict(iou_types=iou_types, bootstrap=0, per_keypoint=False, error_analysis=False)
    ref = evaluate(gt, results, engine="pycocotools", image_ids=ids, **fast)
    got = evaluate(gt, as_arrays(results), engine=engine, image_ids=ids, **fast)
    for t in iou_types:
        a, b = (getattr(m, "bbox" if t == "bbox" else "keypoints").as_array() for m in (ref, got))
        assert np.max(np.abs(a - b)) <= 1e-9, t


def test_hotcoco_gets_the_array_form_only_for_current_box_columns():
    _, results = make_coco_set(9, num_images=5)
    arrays = as_arrays(results)
    boxes = _hotcoco_results(arrays, ["bbox"])
    assert isinstance(boxes, np.ndarray) and boxes.shape == (len(results), 7)
    assert boxes[:, 0].tolist() == [r["image_id"] for r in results]
    assert boxes[:, 1:5].tolist() == [r["bbox"] for r in results]
    assert boxes[:, 5].tolist() == [r["score"] for r in results]
    # keypoints need the dicts; a list subclass goes as a plain list (hotcoco's fast path)
    both = _hotcoco_results(arrays, ["bbox", "keypoints"])
    assert both.__class__ is list and both == results
    arrays.append(dict(results[0]))  # stale columns: the dicts are what counts
    assert _hotcoco_results(arrays, ["bbox"]).__class__ is list
