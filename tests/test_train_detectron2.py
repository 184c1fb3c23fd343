"""tools/train_detectron2.py: the parts that need no detectron2 (which CI does not install):
the model-zoo .pkl layout, the FrozenBN state, the config diff and the card."""

from __future__ import annotations

import hashlib
import io
import pickle
import tomllib

import numpy as np
import pytest
from tool_modules import load_tool


@pytest.fixture(scope="module")
def d2train():
    return load_tool("train_detectron2")


def _globals(data: bytes) -> set[str]:
    """Every ``module.name`` the pickle asks for, as the unpickler resolves them."""
    found: set[str] = set()

    class Recording(pickle.Unpickler):
        def find_class(self, module, name):
            found.add(f"{module}.{name}")
            return super().find_class(module, name)

    Recording(io.BytesIO(data)).load()
    return found


def test_weights_are_the_model_zoo_layout(d2train, tmp_path):
    state = {
        "backbone.bottom_up.stem.conv1.weight": np.arange(24, dtype=np.float32).reshape(2, 3, 2, 2),
        "backbone.bottom_up.stem.conv1.norm.running_var": np.ones(2, dtype=np.float32),
    }
    path = tmp_path / "model_final.pkl"
    d2train.save_d2_pkl(state, path, author="test")
    raw = path.read_bytes()
    assert raw[:2] == b"\x80\x04"  # protocol 4
    data = pickle.loads(raw, encoding="latin1")  # how detectron2's Checkpointer reads it
    assert set(data) == {"model", "__author__", "matching_heuristics"}
    assert data["__author__"] == "test" and data["matching_heuristics"] is True
    assert set(data["model"]) == set(state)
    for k, v in state.items():
        assert data["model"][k].dtype == np.float32 and np.array_equal(data["model"][k], v)
    # numpy's array reconstruction and nothing else (numpy 2 spells its module numpy._core)
    numpy_only = {"numpy._core.multiarray._reconstruct", "numpy.core.multiarray._reconstruct",
                  "numpy.ndarray", "numpy.dtype"}  # fmt: skip
    assert _globals(raw) <= numpy_only
    assert len(raw) < 2 * sum(v.nbytes for v in state.values()) + 1000  # raw bytes, not text


def test_frozen_state_is_fp32_numpy_without_bn_counters(d2train):
    import torch

    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    model[1].running_mean.fill_(0.25)
    state = d2train.frozen_state(model)
    assert set(state) == {"0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean",
                          "1.running_var"}  # fmt: skip
    assert all(isinstance(v, np.ndarray) and v.dtype == np.float32 for v in state.values())
    assert np.all(state["1.running_mean"] == 0.25)
    state["0.weight"][:] = 7  # a copy: writing it never touches the model
    assert not torch.all(model[0].weight == 7)


def test_only_keys_that_differ_from_the_zoo_config_are_kept(d2train):
    zoo = {"MODEL": {"FPN": {"OUT_CHANNELS": 256}, "ANCHOR_GENERATOR": {"SIZES": [[32], [64]]},
                     "ROI_KEYPOINT_HEAD": {"CONV_DIMS": (512, 512)}}}  # fmt: skip
    overrides = {
        "MODEL.FPN.OUT_CHANNELS": 64,
        "MODEL.ANCHOR_GENERATOR.SIZES": [[32], [64]],  # same as the zoo's
        "MODEL.ROI_KEYPOINT_HEAD.CONV_DIMS": [512, 512],  # a list equals the zoo's tuple
    }
    assert d2train.changed_keys(overrides, zoo) == {"MODEL.FPN.OUT_CHANNELS": 64}
    assert d2train._merge_list({"A.B": 1, "C": [2]}) == ["A.B", 1, "C", [2]]


def test_default_model_keys_and_their_description(d2train):
    args = d2train.build_parser().parse_args(["--out", "x"])
    keys = d2train.model_overrides(args)
    assert keys["MODEL.RESNETS.WIDTH_PER_GROUP"] == 16
    assert keys["MODEL.ANCHOR_GENERATOR.SIZES"] == [[16], [32], [64], [128], [256]]
    assert keys["INPUT.MIN_SIZE_TEST"] == 288 and keys["INPUT.MAX_SIZE_TEST"] == 384
    assert "MODEL.WEIGHTS" not in keys  # the card's weights file, not a config key
    assert d2train.train_overrides(args)["MODEL.RESNETS.NORM"] == "BN"
    mods = " | ".join(d2train.describe_modifications(keys, args))
    assert "16/64 of its width" in mods and "8 convs of [64] channels" in mods
    assert "from scratch" in mods and "FrozenBN" in mods


def test_card_is_the_detectron2_format(d2train, tmp_path):
    out = tmp_path / "kp-d2"
    out.mkdir()
    weights = out / "model_final.pkl"
    weights.write_bytes(b"not really weights")
    val = tmp_path / "val" / "annotations.json"
    val.parent.mkdir()
    val.write_text("{}")
    kwargs = {"MODEL.FPN.OUT_CHANNELS": 64, "MODEL.ANCHOR_GENERATOR.SIZES": [[16], [32]]}
    path = d2train.write_card(out, name="kp-d2", version="1.0.0", weights=weights,
                              kwargs=kwargs, source="https://models.example.org/kp-d2/1.0.0",
                              modifications=["a", "b"], val=val, val_images=None)  # fmt: skip
    card = tomllib.loads(path.read_text())
    model = card["model"]
    assert model["format"] == "detectron2"
    assert model["architecture"] == "detectron2:keypoint_rcnn_R_50_FPN_3x"
    assert model["weights"] == "model_final.pkl"
    assert model["sha256"] == hashlib.sha256(b"not really weights").hexdigest()
    assert model["kwargs"] == kwargs  # quoted dotted keys, not nested tables
    assert card["provenance"]["modifications"] == ["a", "b"]
    assert card["license"] == {"spdx": "Apache-2.0", "file": "LICENSE"}
    assert card["dataset"] == {"annotations": "../val/annotations.json", "images": "../val/images"}
    assert "claims" not in card  # measured with the plugin on the finished card, not here
