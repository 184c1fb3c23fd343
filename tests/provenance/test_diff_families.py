"""kp_diff for the model families: Ultralytics checkpoints (read by their adapter, no model code
runs) and ONNX graphs (their initializers), against themselves and against each other."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

UL = Path(__file__).parents[1] / "adapters" / "ultralytics"
sys.path.insert(0, str(UL))

from ul_cases import DATA, card  # noqa: E402

from pytest_kpmodel.provenance.diff import diff_cards  # noqa: E402


def test_an_ultralytics_checkpoint_against_itself_is_frozen(tmp_path):
    a = card(tmp_path / "a", DATA / "yolov8-pose-tiny.pt")
    b = card(tmp_path / "b", DATA / "yolov8-pose-tiny.pt")
    d = diff_cards(a, b, flops=False)
    assert not (d.added or d.removed or d.reshaped or d.changed)
    assert d.tensors and all(t.status == "frozen" for t in d.tensors)
    assert any(".cv4." in t.name for t in d.tensors)  # the pose head's keypoint branch


def test_yolo11_against_yolov8_names_what_differs(tmp_path):
    a = card(tmp_path / "a", DATA / "yolo11-pose-tiny.pt")
    b = card(tmp_path / "b", DATA / "yolov8-pose-tiny.pt")
    d = diff_cards(a, b, flops=False)
    assert d.added and d.removed  # C3k2/C2PSA blocks against C2f
    assert d.model.params != d.base.params


def test_an_onnx_graph_is_diffed_by_its_initializers(tmp_path):
    pytest.importorskip("onnx")
    a = card(
        tmp_path / "a",
        DATA / "yolo11-pose-tiny.onnx",
        fmt="onnx",
        model_extra='output_layout = "yolo-pose"',
    )
    b = card(
        tmp_path / "b",
        DATA / "yolo11-pose-tiny.onnx",
        fmt="onnx",
        model_extra='output_layout = "yolo-pose"',
    )
    d = diff_cards(a, b)
    assert d.tensors and not (d.added or d.removed or d.reshaped or d.changed)
    assert "ONNX graph" in d.model.note
    other = card(
        tmp_path / "c",
        DATA / "yolov8-pose-tiny.onnx",
        fmt="onnx",
        model_extra='output_layout = "yolo-pose"',
    )
    assert diff_cards(a, other).summary()["frozen"] < len(d.tensors)
