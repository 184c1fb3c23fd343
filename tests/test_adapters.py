from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import torch

from kp_factories import make_model, tiny_module
from pytest_kpmodel.adapters import load_model, registry
from pytest_kpmodel.adapters.base import Prediction
from pytest_kpmodel.adapters.options import LoadOptions
from pytest_kpmodel.card import load_card
from pytest_kpmodel.errors import AdapterError, RefusedToLoad

IMAGES = [torch.rand(3, 60, 80), torch.rand(3, 72, 96)]


def reference_outputs():
    with torch.inference_mode():
        return tiny_module(seed=0)(IMAGES)


@pytest.mark.parametrize("fmt", ["safetensors", "pytorch", "torchscript"])
def test_formats_load_the_same_model(tmp_path, fmt):
    card = load_card(make_model(tmp_path / fmt, fmt=fmt))
    model = load_model(card, LoadOptions(allow_code=True))
    preds = model.predict(IMAGES)
    assert [type(p) for p in preds] == [Prediction, Prediction]
    ref = reference_outputs()
    for p, r in zip(preds, ref, strict=True):
        assert p.keypoints.shape == (len(p), 17, 3)
        torch.testing.assert_close(p.boxes, r["boxes"])
        # the third keypoint column is the keypoint score, not torchvision's visibility flag
        torch.testing.assert_close(p.keypoints[..., 2], r["keypoints_scores"])


def test_torchscript_needs_allow_code(tmp_path):
    card = load_card(make_model(tmp_path / "ts", fmt="torchscript"))
    with pytest.raises(AdapterError, match="--kp-allow-code"):
        load_model(card, LoadOptions())


def test_python_format_factory_beside_card(tmp_path):
    folder = tmp_path / "py"
    folder.mkdir()
    (folder / "vendor_model.py").write_text(
        textwrap.dedent(
            """
            import torch
            from pytest_kpmodel.adapters.base import Prediction

            class Fixed:
                def predict(self, images):
                    return [Prediction(torch.tensor([[1., 2., 3., 4.]]), torch.tensor([0.9]),
                                       torch.tensor([1]), torch.zeros(1, 17, 3)) for _ in images]

            def build(scale=1):
                return Fixed()
            """
        )
    )
    (folder / "kpmodel.toml").write_text(
        'schema = 1\n[model]\nname = "py"\nformat = "python"\n'
        'architecture = "vendor_model:build"\n[model.kwargs]\nscale = 2\n'
    )
    card = load_card(folder)
    with pytest.raises(AdapterError, match="runs the vendor's code"):
        load_model(card, LoadOptions())
    model = load_model(card, LoadOptions(allow_code=True))
    assert model.predict(IMAGES)[0].boxes.tolist() == [[1.0, 2.0, 3.0, 4.0]]


def test_unknown_architecture(tmp_path):
    path = make_model(tmp_path / "m")
    text = path.read_text().replace("pytest_kpmodel.zoo:keypointrcnn_compact", "nosuchpkg.x:build")
    path.write_text(text)
    with pytest.raises(AdapterError, match=r"\[model.architecture\] cannot import 'nosuchpkg.x'"):
        load_model(load_card(path), LoadOptions())


def test_weights_that_do_not_fit(tmp_path):
    path = make_model(tmp_path / "m")
    path.write_text(path.read_text().replace("keypoint_head_depth = 1", "keypoint_head_depth = 2"))
    with pytest.raises(AdapterError, match="weights do not fit .* 2 missing"):
        load_model(load_card(path), LoadOptions())


def test_kwargs_that_do_not_fit(tmp_path):
    path = make_model(tmp_path / "m")
    path.write_text(
        path.read_text().replace("min_size = 64", 'min_size = 64\nnum_keypoints = "17"')
    )
    with pytest.raises(AdapterError, match=r"\[model.kwargs\]"):
        load_model(load_card(path), LoadOptions())


def test_corrupt_safetensors(tmp_path):
    path = make_model(tmp_path / "m")
    (path.parent / "model.safetensors").write_bytes(b"\x00" * 10)
    with pytest.raises(
        RefusedToLoad, match="refused to load: .*model.safetensors: unrecognised content"
    ):
        load_model(load_card(path), LoadOptions())


def test_pytorch_refuses_pickled_objects(tmp_path):
    path = make_model(tmp_path / "m", fmt="pytorch")
    torch.save({"weird": Path("x")}, path.parent / "model.pt")
    with pytest.raises(RefusedToLoad, match="refused to load: .*pathlib"):
        load_model(load_card(path), LoadOptions())


def test_fp16_on_cpu_is_refused(tmp_path):
    card = load_card(make_model(tmp_path / "m"))
    with pytest.raises(AdapterError, match="fp16 needs a CUDA device"):
        load_model(card, LoadOptions(precision="fp16"))


def test_bf16_runs_on_cpu(tmp_path):
    card = load_card(make_model(tmp_path / "m"))
    preds = load_model(card, LoadOptions(precision="bf16")).predict(IMAGES)
    assert preds[0].boxes.dtype == torch.float32


def test_third_party_adapter_via_entry_point(tmp_path, monkeypatch):
    class EP:
        name, value = "fancy", "kp_factories:make_model"

    monkeypatch.setattr(registry, "entry_points", lambda group: [EP()])
    assert "fancy" in registry.available_formats()


def test_missing_format_adapter_message(tmp_path, monkeypatch):
    card = load_card(make_model(tmp_path / "m"))
    monkeypatch.setitem(registry.BUILTIN, "safetensors", "pytest_kpmodel.adapters.nope:load")
    with pytest.raises(AdapterError, match="no adapter for format 'safetensors'"):
        load_model(card, LoadOptions())
