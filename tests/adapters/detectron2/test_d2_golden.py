"""The plugin's detectron2 implementation reproduces detectron2's DefaultPredictor (golden data
written by detectron2 itself), from both checkpoint layouts, without detectron2 installed."""

from __future__ import annotations

import pickle

import pytest
import torch
from d2_cases import DATA, assert_matches_golden, images, make_card

from pytest_kpmodel.adapters import load_model
from pytest_kpmodel.adapters.options import LoadOptions
from pytest_kpmodel.card import load_card
from pytest_kpmodel.security import scan_path


@pytest.mark.parametrize(("layout", "kind"), [("pkl", "numpy-pickle"), ("pth", "torch-zip")])
def test_both_layouts_match_detectron2(tmp_path, layout, kind):
    card = load_card(make_card(tmp_path / layout, layout))
    report = scan_path(card.model.weights)
    assert (report.kind, report.verdict) == (kind, "clean"), [f.message for f in report.findings]
    model = load_model(card, LoadOptions(scan_report=report))
    assert_matches_golden(model.predict(images()))


def test_one_image_at_a_time_equals_the_batch(tmp_path):
    model = load_model(load_card(make_card(tmp_path)), LoadOptions())
    ims = images()
    singles = [model.predict([im])[0] for im in ims]
    assert_matches_golden(singles)
    assert_matches_golden(model.predict(ims + ims)[: len(ims)])


def test_adapter_contract(tmp_path):
    model = load_model(load_card(make_card(tmp_path)), LoadOptions())
    assert model.device == torch.device("cpu") and model.num_keypoints == 17
    assert not model.module.training
    preds = model.predict([images()[0], torch.zeros(3, 40, 30)])
    assert preds[0].keypoints.shape == (len(preds[0]), 17, 3)
    assert preds[0].labels.dtype == torch.int64 and set(preds[0].labels.tolist()) == {1}
    assert preds[1].boxes.shape[1] == 4 and preds[1].keypoints.shape[1:] == (17, 3)
    assert model.predict([]) == []


def test_bf16_runs(tmp_path):
    model = load_model(load_card(make_card(tmp_path)), LoadOptions(precision="bf16"))
    preds = model.predict(images()[:1])
    assert preds[0].boxes.dtype == torch.float32 and torch.isfinite(preds[0].boxes).all()


def test_caffe2_blobs_layout_is_renamed_and_matches(tmp_path):
    """A Detectron1/Caffe2 .pkl (``blobs`` with C2 names, background class first, momentum
    entries) loads through detectron2's renaming + suffix matching to the same weights."""
    from c2_export import to_caffe2_blobs

    model_pkl = pickle.loads((DATA / "model_final.pkl").read_bytes())
    blobs = to_caffe2_blobs(model_pkl["model"])
    folder = tmp_path / "c2"
    folder.mkdir()
    with open(folder / "model_final.pkl", "wb") as f:
        pickle.dump({"blobs": blobs, "cfg": "MODEL:\n  TYPE: generalized_rcnn\n"}, f, protocol=2)
    card = load_card(make_card(folder, weights=folder / "model_final.pkl"))
    model = load_model(card, LoadOptions())
    assert_matches_golden(model.predict(images()))


def test_no_detections(tmp_path):
    from d2_cases import kwargs

    kw = {**kwargs(), "MODEL.ROI_HEADS.SCORE_THRESH_TEST": 1.0}
    model = load_model(load_card(make_card(tmp_path, kw=kw)), LoadOptions())
    for p in model.predict(images()):
        assert len(p) == 0 and p.boxes.shape == (0, 4) and p.keypoints.shape == (0, 17, 3)
