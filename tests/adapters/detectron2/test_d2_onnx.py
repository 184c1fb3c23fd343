"""``output_layout = "detectron2"``: the plugin's detectron2 graph exported in detectron2's
export layout, decoded by the onnx adapter, and its kp_parity row."""

from __future__ import annotations

import shutil

import pytest
from d2_cases import assert_matches_golden, dataset, images, make_card

from pytest_kpmodel.adapters import load_model
from pytest_kpmodel.adapters.options import LoadOptions
from pytest_kpmodel.bench import parity
from pytest_kpmodel.card import load_card
from pytest_kpmodel.data import load_dataset
from pytest_kpmodel.errors import CardError

pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """(eager model, exported .onnx path), exported once for the module."""
    tmp = tmp_path_factory.mktemp("d2onnx")
    model = load_model(load_card(make_card(tmp / "eager")), LoadOptions())
    onnx_model, notes = model.onnx_variant(tmp, images()[:1])
    assert "detectron2's export layout" in notes
    return model, onnx_model.path


def _onnx_card(folder, onnx_path, kwargs: str = ""):
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(onnx_path, folder / "model.onnx")
    path = folder / "kpmodel.toml"
    path.write_text(
        'schema = 1\n[model]\nname = "d2-onnx"\nformat = "onnx"\nweights = "model.onnx"\n'
        f'output_layout = "detectron2"\n[model.kwargs]\n{kwargs}'
    )
    return load_card(path)


def test_export_matches_detectron2(tmp_path, exported):
    _, onnx_path = exported
    model = load_model(_onnx_card(tmp_path / "m", onnx_path), LoadOptions())
    assert model.min_size == 128 and model.max_size == 192  # from the graph's metadata
    assert_matches_golden(model.predict(images()))


def test_outputs_by_position(tmp_path, exported):
    """detectron2's own TracingAdapter export leaves its outputs unnamed: read by position."""
    onnx = pytest.importorskip("onnx")
    _, onnx_path = exported
    proto = onnx.load(str(onnx_path))
    for i, out in enumerate(proto.graph.output):
        proto.graph.node.append(onnx.helper.make_node("Identity", [out.name], [f"output{i}"]))
        out.name = f"output{i}"
    path = tmp_path / "unnamed.onnx"
    onnx.save(proto, str(path))
    model = load_model(_onnx_card(tmp_path / "m", path), LoadOptions())
    assert_matches_golden(model.predict(images()))


def test_card_input_keys_override_and_others_are_refused(tmp_path, exported):
    _, onnx_path = exported
    card = _onnx_card(tmp_path / "a", onnx_path, '"INPUT.MIN_SIZE_TEST" = 160\n')
    assert load_model(card, LoadOptions()).min_size == 160
    card = _onnx_card(tmp_path / "b", onnx_path, '"MODEL.FPN.OUT_CHANNELS" = 16\n')
    with pytest.raises(CardError, match=r'"MODEL.FPN.OUT_CHANNELS"\] an ONNX export has every'):
        load_model(card, LoadOptions())
    card = _onnx_card(tmp_path / "c", onnx_path, '"INPUT.FORMAT" = "HSV"\n')
    with pytest.raises(CardError, match=r"must be one of 'BGR', 'RGB'"):
        load_model(card, LoadOptions())


def test_parity_row(tmp_path, exported):
    model, _ = exported
    card = load_card(make_card(tmp_path / "m"))
    table = parity.run(
        model, card, load_dataset(dataset(tmp_path / "data")),
        variants=("fp32", "bf16", "fp16", "onnx"),
        measure_speed=False, workdir=tmp_path / "parity",
    )  # fmt: skip
    assert table.row("bf16").status == "ok", table.row("bf16").reason
    fp16 = table.row("fp16")
    assert fp16.status == "skipped" and "needs a CUDA device" in fp16.reason
    row = table.row("onnx")
    assert row.status == "ok", row.reason
    assert "detectron2's export layout" in row.notes
    assert row.detections == table.row("fp32").detections == 36
    assert row.mean_oks is not None and row.mean_oks > 0.99
