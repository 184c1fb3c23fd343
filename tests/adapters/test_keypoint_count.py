"""A model's keypoint count against the card's [keypoints]: one CardError at load naming the
card key and both counts, or (no static count) an AdapterError at the first prediction."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from kp_factories import make_model
from pytest_kpmodel.adapters import load_model
from pytest_kpmodel.adapters.keypoint_count import check_onnx_outputs
from pytest_kpmodel.adapters.options import LoadOptions
from pytest_kpmodel.adapters.torch_module import TorchDetectionModel
from pytest_kpmodel.card import load_card
from pytest_kpmodel.errors import AdapterError, CardError

CROWDPOSE = '[keypoints]\npreset = "crowdpose14"'


@pytest.mark.parametrize("fmt", ["safetensors", "torchscript"])
def test_the_weights_count_is_checked_at_load(tmp_path, fmt):
    card = load_card(make_model(tmp_path, fmt=fmt, extra=CROWDPOSE))
    with pytest.raises(CardError) as exc:
        load_model(card, LoadOptions(allow_code=True))
    msg = str(exc.value)
    assert msg.startswith(f"{card.path}: [keypoints] the model predicts 17 keypoints")
    assert "roi_heads.keypoint_predictor.kps_score_lowres.weight (16, 17, 4, 4)" in msg
    assert "describes 14 keypoints (preset crowdpose14)" in msg


def test_the_kwargs_count_is_checked_before_building(tmp_path):
    path = make_model(tmp_path, extra=CROWDPOSE)
    path.write_text(
        path.read_text().replace("[model.kwargs]\n", "[model.kwargs]\nnum_keypoints = 17\n")
    )
    with pytest.raises(
        CardError, match=r"\(\[model.kwargs\] num_keypoints = 17\) but \[keypoints\] describes 14"
    ):
        load_model(load_card(path), LoadOptions())


def test_a_matching_count_loads(tmp_path):
    model = load_model(load_card(make_model(tmp_path)), LoadOptions())
    assert model.num_keypoints == 17


class FourteenPoints(torch.nn.Module):
    """A detector with no keypoint predictor to read: its count shows in its outputs."""

    def forward(self, images):
        n = 2
        return [
            {"boxes": torch.zeros(n, 4), "scores": torch.ones(n), "labels": torch.ones(n, dtype=torch.long),
             "keypoints": torch.zeros(n, 14, 3)}
            for _ in images
        ]  # fmt: skip


def test_a_prediction_of_another_count_is_refused():
    model = TorchDetectionModel(FourteenPoints(), LoadOptions(), 17, "vendor-net")
    with pytest.raises(
        AdapterError,
        match=r"model vendor-net predicted 14 keypoints per detection but the card's \[keypoints\] describes 17",
    ):
        model.predict([torch.rand(3, 8, 8)])
    assert (
        len(
            TorchDetectionModel(FourteenPoints(), LoadOptions(), 14).predict([torch.rand(3, 8, 8)])[
                0
            ]
        )
        == 2
    )


def test_an_onnx_graph_with_a_static_keypoint_shape(tmp_path):
    card = load_card(make_model(tmp_path, extra=CROWDPOSE))
    outputs = [
        SimpleNamespace(name="boxes", shape=["N", 4]),
        SimpleNamespace(name="keypoints", shape=["N", 17, 3]),
    ]
    with pytest.raises(CardError, match=r"the graph's output keypoints \['N', 17, 3\]"):
        check_onnx_outputs(card, outputs)
    check_onnx_outputs(
        card, [SimpleNamespace(name="keypoints", shape=["N", "K", 3])]
    )  # dynamic: at predict
