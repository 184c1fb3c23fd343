"""Bad input is refused with one message naming the annotation, result or key; what
pycocotools handles is handled the same way."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
from metrics_reference import pycoco_eval

from pytest_kpmodel.errors import DatasetError
from pytest_kpmodel.metrics import EngineError, evaluate, resolve_engine
from pytest_kpmodel.metrics.synthetic import make_coco_set

FAST = dict(bootstrap=0, per_keypoint=False, error_analysis=False)


@pytest.fixture(scope="module")
def base():
    return make_coco_set(21, num_images=6, people_per_image=2.0, empty_image_rate=0.0)


def first_person(gt):
    return next(a for a in gt["annotations"] if not a["iscrowd"] and a["num_keypoints"] > 0)


def refused(gt, results, match, **kw):
    with pytest.raises(DatasetError, match=match):
        evaluate(gt, results, **FAST, **kw)


def test_sigma_count_must_equal_keypoint_count(base):
    gt, res = copy.deepcopy(base)
    refused(gt, res, r"16 OKS sigmas were given for 17 keypoints", sigmas=[0.05] * 16)
    refused(gt, res, r"OKS sigma #3 is 0.0", sigmas=[0.05] * 3 + [0.0] + [0.05] * 13)
    gt5, res5 = make_coco_set(22, num_images=3, num_keypoints=5)
    refused(gt5, res5, r"5 keypoints but no OKS sigmas were given")


def test_area_missing_or_not_positive(base):
    for bad, match in (
        (None, "has no 'area'"),
        (0, "'area' is 0"),
        (-5.0, "'area' is -5.0"),
        (math.nan, "'area' is nan"),
    ):
        gt, res = copy.deepcopy(base)
        a = first_person(gt)
        if bad is None:
            del a["area"]
        else:
            a["area"] = bad
        refused(gt, res, f"annotation id {a['id']}.*{match}")


def test_box_area_everywhere_is_refused_unless_allowed(base):
    gt, res = copy.deepcopy(base)
    for a in gt["annotations"]:
        a["area"] = a["bbox"][2] * a["bbox"][3]
    refused(gt, res, r"equals its box w\*h .*inflate keypoint AP.*\[dataset\].*--kp-allow-box-area")
    m = evaluate(gt, res, allow_box_area=True, **FAST)
    assert pytest.approx(pycoco_eval(gt, res, "keypoints").stats[0], abs=1e-12) == m.keypoints.AP
    gt["annotations"][0]["area"] *= 0.5  # not everywhere: accepted
    evaluate(gt, res, **FAST)


def test_visibility_flags_must_be_0_1_2(base):
    gt, res = copy.deepcopy(base)
    a = first_person(gt)
    a["keypoints"][2] = 3
    refused(gt, res, rf"annotation id {a['id']}: keypoint visibility flags must be 0, 1 or 2")
    a["keypoints"][2] = 2
    a["num_keypoints"] = -1
    refused(gt, res, rf"annotation id {a['id']}: 'num_keypoints' must be an integer >= 0")


@pytest.mark.parametrize(
    "edit, match",
    [
        (lambda a: a.pop("num_keypoints"), "has no 'num_keypoints'"),
        (lambda a: a.pop("iscrowd"), "has no 'iscrowd'"),
        (
            lambda a: a.update(keypoints=a["keypoints"][:-3]),
            r"lists 17 keypoint names but 1 of \d+ annotations carry 16 keypoints \(48 values\)",
        ),
        (lambda a: a.update(bbox=[1, 2, -3, 4]), "negative width or height"),
        (lambda a: a.update(image_id=999), "image_id 999 is not in 'images'"),
        (lambda a: a.update(category_id=7), "category_id 7 is not in 'categories'"),
        (lambda a: a.update(id=0), "id 0 is not allowed"),
    ],
)
def test_malformed_annotations(base, edit, match):
    gt, res = copy.deepcopy(base)
    edit(first_person(gt))
    refused(gt, res, match)


def test_duplicate_annotation_id(base):
    gt, res = copy.deepcopy(base)
    gt["annotations"][1]["id"] = gt["annotations"][0]["id"]
    refused(gt, res, rf"annotation id {gt['annotations'][0]['id']} appears twice")


@pytest.mark.parametrize(
    "edit, match",
    [
        (
            lambda r: r.update(image_id=12345),
            r"result #3: image_id 12345 is not in the ground truth",
        ),
        (lambda r: r.update(score=float("nan")), r"result #3 .*'score' must be a finite number"),
        (lambda r: r.pop("score"), r"result #3 has no 'score'"),
        (
            lambda r: r.update(keypoints=r["keypoints"][:6]),
            r"result #3 .*'keypoints' must be a list of 51",
        ),
        (
            lambda r: r.update(bbox=[0, 0, 1, float("inf")]),
            r"result #3 .*'bbox' contains a non-finite",
        ),
        (lambda r: r.update(bbox=[0, 0, -1, 2]), r"result #3 .*negative width"),
    ],
)
def test_malformed_results(base, edit, match):
    gt, res = copy.deepcopy(base)
    edit(res[3])
    refused(gt, res, match)


def test_results_of_unknown_categories_are_not_evaluated(base):
    gt, res = copy.deepcopy(base)
    extra = [dict(r, category_id=99) for r in res[:5]]
    m = evaluate(gt, res + extra, **FAST)
    assert m.dataset["ignored_results"] == 5
    for t, stats in (("bbox", m.bbox), ("keypoints", m.keypoints)):
        # pycocotools evaluates only the ground truth's categories
        assert np.allclose(
            stats.as_array(), pycoco_eval(gt, res + extra, t).stats, atol=1e-12, rtol=0
        )


def test_image_subset_must_exist(base):
    gt, res = copy.deepcopy(base)
    refused(
        gt,
        res,
        r"image subset names image ids not in the ground truth: \[4242\]",
        image_ids=[1, 4242],
    )


def test_flip_index_must_be_a_permutation(base):
    gt, res = copy.deepcopy(base)
    refused(gt, res, r"flip index .* is not a permutation", flip_index=[0] * 17)


def test_unknown_engine():
    with pytest.raises(EngineError, match="unknown metrics engine 'fast'"):
        resolve_engine("fast")


def test_box_only_set_has_no_keypoint_metrics(base):
    gt, res = copy.deepcopy(base)
    for a in gt["annotations"]:
        for key in ("keypoints", "num_keypoints"):
            a.pop(key)
    for c in gt["categories"]:
        c.pop("keypoints")
    m = evaluate(gt, res)
    assert m.keypoints is None and m.per_keypoint is None and m.bbox is not None
    assert np.allclose(m.bbox.as_array(), pycoco_eval(gt, res, "bbox").stats, atol=1e-12, rtol=0)
    refused(gt, res, "keypoint metrics were asked for", iou_types=["keypoints"])


def test_numpy_numbers_in_results_are_accepted(base):
    gt, res = copy.deepcopy(base)
    as_numpy = [
        dict(
            r,
            image_id=np.int64(r["image_id"]),
            score=np.float32(r["score"]),
            bbox=np.asarray(r["bbox"]),
        )
        for r in res
    ]
    m = evaluate(gt, as_numpy, **FAST)
    ref = evaluate(gt, res, **FAST)
    assert np.allclose(m.bbox.as_array(), ref.bbox.as_array(), atol=1e-6, rtol=0)


def test_keypoint_names_must_be_unique(base):
    gt, res = copy.deepcopy(base)
    refused(gt, res, "keypoint names are not unique", names=["a"] * 17)


@pytest.mark.parametrize(
    ("seg", "match"),
    [
        ({"counts": [0, 25, 75]}, r"'segmentation' is an RLE dict without 'size' \(COCO's RLE"),
        ({"size": [10, 10]}, r"'segmentation' is an RLE dict without 'counts'"),
        (
            {"size": [10], "counts": [1]},
            r"'segmentation' has 'size' \[10\]; an RLE's size is \[height, width\]",
        ),
        ("abc", r"'segmentation' must be a list of polygons or an RLE dict, got str"),
    ],
)
def test_malformed_segmentation_names_the_annotation(base, seg, match):
    """hotcoco refuses these with a bare ValueError naming the list position; pycocotools'
    box and keypoint evaluation never reads them: refused up front for every engine."""
    gt, res = copy.deepcopy(base)
    a = gt["annotations"][1]
    a["segmentation"] = seg
    refused(gt, res, f"annotation id {a['id']}: {match}")


def test_valid_segmentations_are_accepted_by_every_engine(base):
    gt, res = copy.deepcopy(base)
    gt["annotations"][0]["segmentation"] = [[1.0, 1.0, 5.0, 1.0, 5.0, 5.0]]
    gt["annotations"][1]["segmentation"] = {"size": [480, 640], "counts": [0, 10, 307190]}
    want = evaluate(gt, res, engine="pycocotools", **FAST).keypoints.AP
    for engine in ("hotcoco", "faster-coco-eval"):
        try:
            resolve_engine(engine)
        except EngineError:
            continue
        assert (
            pytest.approx(want, abs=1e-12) == evaluate(gt, res, engine=engine, **FAST).keypoints.AP
        )
