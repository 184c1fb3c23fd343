"""Bad detectron2 checkpoints: one message naming the file and the tensors, or the scan's
refusal naming the foreign global, before anything is loaded."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest
import torch
from d2_cases import DATA, images, kwargs, make_card

from pytest_kpmodel.adapters import load_model
from pytest_kpmodel.adapters.options import LoadOptions
from pytest_kpmodel.card import load_card
from pytest_kpmodel.errors import AdapterError, RefusedToLoad


def _zoo() -> dict:
    return pickle.loads((DATA / "model_final.pkl").read_bytes())


def _write_pkl(folder, data, protocol=4):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "model_final.pkl"
    with open(path, "wb") as f:
        pickle.dump(data, f, protocol=protocol)
    return load_card(make_card(folder, weights=path))


def _load(card):
    return load_model(card, LoadOptions())


def test_wrong_shape_names_the_tensor(tmp_path):
    data = _zoo()
    data["model"]["roi_heads.box_head.fc1.weight"] = np.zeros((32, 100), np.float32)
    with pytest.raises(AdapterError) as exc:
        _load(_write_pkl(tmp_path / "m", data))
    msg = str(exc.value)
    assert "model_final.pkl" in msg and "kpmodel.toml" in msg
    assert "1 with other shapes (roi_heads.box_head.fc1.weight (32, 100) in the file, " in msg


def test_config_that_does_not_fit_the_weights(tmp_path):
    card = load_card(make_card(tmp_path, kw={**kwargs(), "MODEL.FPN.OUT_CHANNELS": 32}))
    with pytest.raises(AdapterError, match=r"with other shapes \(backbone.fpn_lateral2.weight"):
        _load(card)


def test_missing_and_unexpected_tensors(tmp_path):
    data = _zoo()
    data["model"].pop("roi_heads.keypoint_head.score_lowres.bias")
    data["model"]["roi_heads.mask_head.predictor.weight"] = np.zeros(3, np.float32)
    with pytest.raises(AdapterError) as exc:
        _load(_write_pkl(tmp_path / "m", data))
    msg = str(exc.value)
    assert "1 missing (roi_heads.keypoint_head.score_lowres.bias)" in msg
    assert "1 unexpected (roi_heads.mask_head.predictor.weight)" in msg


def test_what_detectron2_itself_ignores_is_ignored(tmp_path):
    data = _zoo()
    data["model"]["pixel_mean"] = np.zeros((3, 1, 1), np.float32)
    data["model"]["proposal_generator.anchor_generator.cell_anchors.0"] = np.zeros((3, 4))
    data["model"]["backbone.bottom_up.res2.0.conv1.norm.num_batches_tracked"] = np.array(5)
    _load(_write_pkl(tmp_path / "m", data))


def test_module_prefix_is_stripped(tmp_path):
    data = _zoo()
    data["model"] = {"module." + k: v for k, v in data["model"].items()}
    data["matching_heuristics"] = False
    model = _load(_write_pkl(tmp_path / "m", data))
    assert len(model.predict(images()[:1])) == 1


def test_not_an_array(tmp_path):
    data = _zoo()
    data["model"]["backbone.fpn_lateral2.bias"] = [0.0] * 16
    with pytest.raises(AdapterError, match=r"'backbone.fpn_lateral2.bias' is a list, not an array"):
        _load(_write_pkl(tmp_path / "m", data))


def test_blobs_without_running_stats_start_at_identity(tmp_path):
    """Caffe2 models keep only the folded BN scale and bias: the stats are 0 and 1, as in
    detectron2's FrozenBatchNorm2d for unversioned checkpoints."""
    from c2_export import to_caffe2_blobs

    blobs = to_caffe2_blobs(_zoo()["model"])
    blobs = {k: v for k, v in blobs.items() if not k.endswith(("_bn_rm", "_bn_riv"))}
    model = _load(_write_pkl(tmp_path / "m", {"blobs": blobs}, protocol=2))
    norm = model.module.backbone.bottom_up.res2[0].conv1.norm
    assert torch.equal(norm.running_mean, torch.zeros(4))
    assert torch.equal(norm.running_var, torch.ones(4))


def test_pkl_with_a_foreign_global_is_refused_by_the_scan(tmp_path):
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    data = _zoo()
    data["__author__"] = Payload()
    card = _write_pkl(tmp_path / "m", data)
    with pytest.raises(
        RefusedToLoad, match=r"imports posix.system, which is not on the allow-list"
    ):
        _load(card)
    assert not marker.exists()


def test_object_array_is_refused(tmp_path):
    data = _zoo()
    data["model"]["roi_heads.box_head.fc1.bias"] = np.array([1, "x"], dtype=object)
    with pytest.raises(RefusedToLoad, match=r"dtype 'O8' is not a plain numeric dtype"):
        _load(_write_pkl(tmp_path / "m", data))


def test_pickle_that_is_not_a_dict(tmp_path):
    card = _write_pkl(tmp_path / "m", [np.zeros(3)])
    with pytest.raises(AdapterError, match=r"a detectron2 \.pkl holds a dict, this pickle a list"):
        _load(card)


def test_other_file_kinds_are_refused(tmp_path):
    from safetensors.torch import save_file

    folder = tmp_path / "m"
    folder.mkdir()
    save_file({"a": torch.zeros(1)}, str(folder / "model.safetensors"))
    card = load_card(make_card(folder, weights=folder / "model.safetensors"))
    with pytest.raises(AdapterError, match=r"a safetensors file; format 'detectron2' reads"):
        _load(card)


def test_pth_with_a_bare_state_dict(tmp_path):
    sd = torch.load(DATA / "model_final.pth", weights_only=True)["model"]
    folder = tmp_path / "m"
    folder.mkdir()
    torch.save(sd, folder / "model.pth")
    model = _load(load_card(make_card(folder, weights=folder / "model.pth")))
    assert len(model.predict(images()[:1])[0]) > 0


def test_kp_diff_between_two_detectron2_checkpoints(tmp_path):
    """The mission's case: a modified keypoint_rcnn_R_50_FPN_3x against its base."""
    from pytest_kpmodel.provenance.diff import diff_cards

    base = load_card(make_card(tmp_path / "base"))
    data = _zoo()
    data["model"]["roi_heads.keypoint_head.conv_fcn2.weight"] = (
        data["model"]["roi_heads.keypoint_head.conv_fcn2.weight"] * 1.5
    )
    mod = _write_pkl(tmp_path / "mod", data)
    d = diff_cards(mod, base)
    changed = {t.name for t in d.tensors if t.status == "changed"}
    assert changed == {"roi_heads.keypoint_head.conv_fcn2.weight"}
