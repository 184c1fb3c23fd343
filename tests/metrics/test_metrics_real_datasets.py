"""Ground truths shaped like CrowdPose, OCHuman, HumanArt and COCO-WholeBody: evaluated as
pycocotools evaluates them (with the dataset's sigmas), or refused with one clear message."""

from __future__ import annotations

import copy
import re

import numpy as np
import pytest
from metrics_reference import pycoco_eval
from real_datasets import crowdpose_like, humanart_like, ochuman_like, wholebody_like

from pytest_kpmodel.data_layouts import assemble_wholebody, fill_missing_areas, is_wholebody
from pytest_kpmodel.errors import DatasetError
from pytest_kpmodel.keypoints import COCO17, COCO_WHOLEBODY133, CROWDPOSE14, KeypointSet
from pytest_kpmodel.metrics import available_engines, evaluate
from pytest_kpmodel.metrics.inputs import check_ground_truth
from pytest_kpmodel.metrics.messages import SHOWN_IDS

FAST = dict(bootstrap=0, per_keypoint=False, error_analysis=False)


def crowdpose_with_areas(seed=3):
    gt, res = crowdpose_like(seed)
    filled, note = fill_missing_areas(gt, 0.53)
    assert "area" not in gt["annotations"][0]  # the caller's dict is left alone
    assert note.startswith(f"{len(gt['annotations'])} of {len(gt['annotations'])} annotations")
    return filled, res


# -- CrowdPose -----------------------------------------------------------------------------------
def test_crowdpose_without_area_names_the_fix():
    gt, res = crowdpose_like(1)
    n = len(gt["annotations"])
    with pytest.raises(DatasetError) as exc:
        evaluate(gt, res, sigmas=CROWDPOSE14.sigmas, **FAST)
    msg = str(exc.value)
    assert f"has no 'area' ({n} of {n} annotations have none" in msg
    assert "area_from_box = 0.53" in msg and "--kp-area-from-box=0.53" in msg


@pytest.mark.parametrize("engine", available_engines())
def test_crowdpose_num_keypoints_as_pycocotools(engine):
    gt, res = crowdpose_with_areas()
    m = evaluate(gt, res, sigmas=CROWDPOSE14.sigmas, engine=engine, **FAST)
    ref = pycoco_eval(gt, res, "keypoints", sigmas=list(CROWDPOSE14.sigmas)).stats
    assert np.allclose(m.keypoints.as_array(), ref, atol=1e-12, rtol=0)
    box = pycoco_eval(gt, res, "bbox").stats
    assert np.allclose(m.bbox.as_array(), box, atol=1e-12, rtol=0)
    # the declared num_keypoints matters: counting v > 0 instead scores differently
    recount = copy.deepcopy(gt)
    for a in recount["annotations"]:
        a["num_keypoints"] = sum(v > 0 for v in a["keypoints"][2::3])
    other = pycoco_eval(recount, res, "keypoints", sigmas=list(CROWDPOSE14.sigmas)).stats
    assert not np.allclose(other, ref, atol=1e-6)


def test_crowdpose_analyses_agree_with_the_engine():
    # bootstrap re-matches every image and is checked against the engine's AP to 1e-9
    gt, res = crowdpose_with_areas(4)
    m = evaluate(gt, res, sigmas=CROWDPOSE14.sigmas, flip_index=CROWDPOSE14.flip_index(),
                 names=CROWDPOSE14.names, bootstrap=20)  # fmt: skip
    assert m.per_keypoint is not None and m.keypoint_errors is not None
    assert set(m.per_keypoint.names) == set(CROWDPOSE14.names)


def test_crowdpose_mismatch_is_a_bounded_warning():
    gt, res = crowdpose_with_areas(5)
    anns = gt["annotations"]
    off = [a["id"] for a in anns if a["num_keypoints"] != sum(v > 0 for v in a["keypoints"][2::3])]
    hidden = [a["id"] for a in anns
              if a["num_keypoints"] == 0 and any(v > 0 for v in a["keypoints"][2::3])]  # fmt: skip
    assert len(off) > SHOWN_IDS and hidden
    m = evaluate(gt, res, sigmas=CROWDPOSE14.sigmas, **FAST)
    (note,) = [n for n in m.dataset["notes"] if "num_keypoints" in n]
    assert f"on {len(off)} of {len(anns)} annotations (ids {', '.join(map(str, off[:10]))} and " \
           f"{len(off) - 10} more)" in note  # fmt: skip
    assert "each counts only the first 12 keypoints" in note
    assert f"{len(hidden)} of them are ignored although they have labelled keypoints" in note
    assert check_ground_truth(gt, CROWDPOSE14) == [note]


def test_num_keypoints_positive_without_labels_is_scored_by_the_box():
    gt, res = crowdpose_with_areas(6)
    a = next(a for a in gt["annotations"] if not a["iscrowd"] and a["num_keypoints"] > 3)
    a["keypoints"] = [0.0] * 42  # num_keypoints still > 0: pycocotools scores box distance
    m = evaluate(gt, res, sigmas=CROWDPOSE14.sigmas, **FAST)
    assert any(f"no labelled keypoint, so OKS is their detections' distance to the box (id "
               f"{a['id']})" in n for n in m.dataset["notes"])  # fmt: skip
    ref = pycoco_eval(gt, res, "keypoints", sigmas=list(CROWDPOSE14.sigmas)).stats
    assert np.allclose(m.keypoints.as_array(), ref, atol=1e-12, rtol=0)


# -- OCHuman ------------------------------------------------------------------------------------
def test_box_areas_refused_with_every_way_to_accept_them():
    gt, res = ochuman_like(2)
    with pytest.raises(DatasetError) as exc:
        evaluate(gt, res, **FAST)
    msg = str(exc.value)
    assert "every annotation's 'area' equals its box w*h" in msg
    assert "'allow_box_area = true' under [dataset]" in msg and "--kp-allow-box-area" in msg
    assert "kp_allow_box_area" in msg and "allow_box_area=True" in msg
    assert "np." not in msg
    m = evaluate(gt, res, allow_box_area=True, **FAST)
    assert any("accepted (allow_box_area)" in n for n in m.dataset["notes"])
    ref = pycoco_eval(gt, res, "keypoints").stats
    assert np.allclose(m.keypoints.as_array(), ref, atol=1e-12, rtol=0)


def test_box_areas_are_more_lenient():
    # the same detections scored against the box area and against a smaller (segment-like)
    # area: OKS divides the squared distance by the area, so the box area scores higher
    gt, res = ochuman_like(3)
    seg = copy.deepcopy(gt)
    for a in seg["annotations"]:
        a["area"] *= 0.53
    box_ap = evaluate(gt, res, allow_box_area=True, **FAST).keypoints["AP"]
    seg_ap = evaluate(seg, res, **FAST).keypoints["AP"]
    assert box_ap > seg_ap


# -- HumanArt -----------------------------------------------------------------------------------
@pytest.mark.parametrize("sigmas", [None, COCO17.sigmas, (0.05,) * 21])
def test_humanart_one_message_whatever_the_sigmas(sigmas):
    gt, res = humanart_like(1)
    n = len(gt["annotations"])
    with pytest.raises(DatasetError) as exc:
        evaluate(gt, res, sigmas=sigmas, **FAST)
    msg = str(exc.value)
    ids = ", ".join(str(a["id"]) for a in gt["annotations"][:SHOWN_IDS])
    assert msg.startswith(
        f"category 1 'person' lists 21 keypoint names but {n} of {n} annotations carry 17 "
        f"keypoints (51 values) in 'keypoints' (ids {ids}"
    )
    assert "they also carry 'keypoints_21' with 63 values" in msg
    assert "sigma" not in msg


def test_humanart_fixed_category_evaluates():
    gt, res = humanart_like(2)
    gt["categories"][0]["keypoints"] = list(COCO17.names)
    m = evaluate(gt, res, **FAST)
    assert np.allclose(m.keypoints.as_array(), pycoco_eval(gt, res, "keypoints").stats)


# -- COCO-WholeBody -------------------------------------------------------------------------------
def test_wholebody_assembly():
    gt, res = wholebody_like(1)
    assert is_wholebody(gt) and not is_wholebody(ochuman_like(1)[0])
    wb, note = assemble_wholebody(gt)
    assert "num_keypoints" in gt["annotations"][0] and len(gt["annotations"][0]["keypoints"]) == 51
    assert wb["categories"][0]["keypoints"] == list(COCO_WHOLEBODY133.names)
    for a, b in zip(gt["annotations"], wb["annotations"], strict=True):
        flat = a["keypoints"] + a["foot_kpts"] + a["face_kpts"] + a["lefthand_kpts"]
        flat += a["righthand_kpts"]
        assert len(b["keypoints"]) == 399 and b["keypoints"][0::3] == flat[0::3]
        assert [v > 0 for v in b["keypoints"][2::3]] == [v > 0 for v in flat[2::3]]
        assert set(b["keypoints"][2::3]) <= {0, 1, 2}
        assert b["num_keypoints"] == sum(v > 0 for v in flat[2::3])
    fractional = sum(1 for a in gt["annotations"] for k in ("lefthand_kpts", "righthand_kpts")
                     for v in a[k][2::3] if 0 < v < 1)  # fmt: skip
    assert fractional and f"{fractional} fractional visibility flags" in note


@pytest.mark.parametrize("engine", available_engines())
def test_133_keypoints_with_wholebody_sigmas_as_pycocotools(engine):
    gt, res = wholebody_like(2)
    wb, _ = assemble_wholebody(gt)
    ks = COCO_WHOLEBODY133
    m = evaluate(wb, res, sigmas=ks.sigmas, flip_index=ks.flip_index(), names=ks.names,
                 engine=engine, **FAST)  # fmt: skip
    ref = pycoco_eval(wb, res, "keypoints", sigmas=list(ks.sigmas)).stats
    assert np.allclose(m.keypoints.as_array(), ref, atol=1e-12, rtol=0)
    assert check_ground_truth(wb, ks) == []


def test_wholebody_part_of_the_wrong_size():
    gt, _ = wholebody_like(3)
    gt["annotations"][0]["face_kpts"] = gt["annotations"][0]["face_kpts"][:-3]
    with pytest.raises(DatasetError, match=r"'face_kpts' must be a list of 204 numbers .*201"):
        assemble_wholebody(gt)


# -- the model's keypoints against the ground truth's ---------------------------------------------
def test_keypoint_count_mismatch_names_the_preset():
    gt, _ = crowdpose_with_areas(7)
    with pytest.raises(DatasetError) as exc:
        check_ground_truth(gt, COCO17, keypoints_from="the card's [keypoints] (x.toml)")
    msg = str(exc.value)
    assert msg.startswith(
        "the card's [keypoints] (x.toml) has 17 keypoints (preset coco17) but the ground truth's "
        "category 1 'person' has 14 (left_shoulder, right_shoulder, left_elbow, ..., neck)"
    )
    assert "set preset = 'crowdpose14' under [keypoints]" in msg


def test_keypoint_order_and_names():
    gt, _ = ochuman_like(4)
    swapped = list(COCO17.names)
    swapped[1], swapped[2] = swapped[2], swapped[1]
    ks = KeypointSet(names=tuple(swapped), flip_pairs=(), sigmas=COCO17.sigmas)
    with pytest.raises(DatasetError, match=r"same keypoints in another order \(first at #1: "):
        check_ground_truth(gt, ks, allow_box_area=True)
    renamed = ("head",) + COCO17.names[1:]
    ks = KeypointSet(names=renamed, flip_pairs=COCO17.flip_pairs, sigmas=COCO17.sigmas)
    notes = check_ground_truth(gt, ks, allow_box_area=True)
    assert "name 1 keypoints differently (#0 'head' vs 'nose')" in notes[0]


# -- no numpy reprs in any message ---------------------------------------------------------------
def _as_numpy(gt, res):
    """The same sets with numpy numbers where JSON would have Python ones."""
    gt = copy.deepcopy(gt)
    for a in gt["annotations"]:
        a["id"], a["image_id"] = np.int64(a["id"]), np.int64(a["image_id"])
        a["bbox"] = np.asarray(a["bbox"])
        if "area" in a:
            a["area"] = np.float64(a["area"])
        a["keypoints"] = np.asarray(a["keypoints"])
        a["num_keypoints"] = np.int64(a["num_keypoints"])
    res = [dict(r, image_id=np.int64(r["image_id"]), score=np.float32(r["score"]),
                bbox=np.asarray(r["bbox"]), keypoints=np.asarray(r["keypoints"])) for r in res]  # fmt: skip
    return gt, res


def _gt_edits():
    def set_(key, value):
        return lambda a: a.__setitem__(key, value)

    return [
        set_("area", np.float64(-3.0)), set_("area", np.float64("nan")),
        set_("bbox", np.asarray([1.0, 2.0, -3.0, 4.0])), set_("bbox", np.asarray([1.0, np.inf, 3, 4])),
        set_("iscrowd", np.int64(3)), set_("num_keypoints", np.int64(-1)),
        set_("image_id", np.int64(99999)), set_("category_id", np.int64(7)),
        set_("keypoints", np.asarray([np.float64(1.5)] * 50)), set_("id", np.int64(0)),
        lambda a: a["keypoints"].__setitem__(2, np.float64(0.5)),
        lambda a: a.__setitem__("area", np.asarray([5.0])),
    ]  # fmt: skip


def _result_edits():
    def set_(key, value):
        return lambda r: r.__setitem__(key, value)

    return [
        set_("score", np.float32("nan")), set_("score", np.asarray([0.5])),
        set_("image_id", np.int64(123456)), set_("image_id", np.float64(1.0)),
        set_("category_id", np.float32(1.0)), set_("bbox", np.asarray([0.0, 0.0, -1.0, 2.0])),
        set_("bbox", np.asarray([0.0, np.nan, 1.0, 2.0])), set_("keypoints", np.zeros(7)),
        set_("keypoints", np.full(51, np.inf)), lambda r: r.pop("bbox"),
    ]  # fmt: skip


def test_no_numpy_reprs_in_the_refusal_matrix():
    base_gt, base_res = _as_numpy(*ochuman_like(5))
    messages = []

    def collect(gt, res, **kw):
        with pytest.raises(DatasetError) as exc:
            evaluate(gt, res, **FAST, **kw)
        messages.append(str(exc.value))

    for edit in _gt_edits():
        gt = copy.deepcopy(base_gt)
        edit(gt["annotations"][3])
        collect(gt, base_res, allow_box_area=True)
    for edit in _result_edits():
        res = copy.deepcopy(base_res)
        edit(res[3])
        collect(base_gt, res, allow_box_area=True)
    collect(base_gt, base_res)  # box areas
    collect(base_gt, base_res, allow_box_area=True, sigmas=np.asarray([0.05] * 16))
    collect(base_gt, base_res, allow_box_area=True, sigmas=np.asarray([0.05] * 16 + [0.0]))
    collect(base_gt, base_res, allow_box_area=True, flip_index=np.zeros(17, dtype=np.int64))
    collect(base_gt, base_res, allow_box_area=True, image_ids=[np.int64(4242)])
    hgt, hres = _as_numpy(*humanart_like(3))
    collect(hgt, hres)
    cgt, cres = _as_numpy(*crowdpose_like(3))
    collect(cgt, cres, sigmas=CROWDPOSE14.sigmas)
    assert len(set(messages)) == len(messages) == 29  # every edit is refused, each its own way
    leaks = [m for m in messages if re.search(r"np\.|array\(|dtype", m)]
    assert not leaks, leaks
