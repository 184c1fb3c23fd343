"""Deployment parity on a tiny model, and the ``onnx`` / ``exported`` adapters loading the files
the parity run exported (each export happens once per module).

Tolerances against the eager fp32 model on the CPU (measured on the tiny model: ONNX Runtime
differs by <= 1e-4 px on boxes/keypoints and <= 2e-5 on scores at 72x96 to 300x400; the
``torch.export`` parts are bit-identical):

- onnx: boxes and keypoint x/y within 1e-3 px, scores and keypoint scores within 1e-3, labels
  equal;
- exported: within 1e-5 (same kernels, same order).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from kp_factories import TINY_KWARGS, make_dataset, tiny_module, write_card
from pytest_kpmodel.adapters import load_model
from pytest_kpmodel.adapters.options import LoadOptions
from pytest_kpmodel.adapters.pt2_archive import FULL_PROGRAM, save_programs
from pytest_kpmodel.adapters.torch_module import TorchDetectionModel
from pytest_kpmodel.bench import export, parity, precision
from pytest_kpmodel.bench.measure import measure
from pytest_kpmodel.bench.settings import BenchSettings
from pytest_kpmodel.card import load_card
from pytest_kpmodel.data import load_dataset
from pytest_kpmodel.errors import AdapterError, ExportUnavailable
from pytest_kpmodel.provenance.digests import sha256_file


def fake_evaluate(ps):
    n = sum(len(p) for p in ps.predictions)
    return {"bbox": {"AP": 0.25}, "keypoints": {"AP": 0.5}, "detections": n}


@pytest.fixture(scope="module")
def tiny():
    return TorchDetectionModel(tiny_module(), LoadOptions(), 17, "tiny")


@pytest.fixture(scope="module")
def parity_run(tmp_path_factory, tiny):
    root = tmp_path_factory.mktemp("parity")
    dataset = load_dataset(make_dataset(root / "data", n=2))
    settings = BenchSettings(iters=2, warmup=0, image_size=(72, 96), num_images=1, stage_iters=1)
    with pytest.MonkeyPatch.context() as mp:  # every row timed, whatever this CPU's bf16
        mp.setattr(precision, "cpu_has_native_bf16", lambda: True)
        table = parity.run(
            tiny, None, dataset, evaluate_fn=fake_evaluate, settings=settings, workdir=root / "work"
        )
    return table, root / "work", dataset


def test_parity_table_rows(parity_run):
    table, _, _ = parity_run
    assert [r.variant for r in table.rows] == ["fp32", "bf16", "fp16", "onnx", "exported"]
    fp32, bf16, fp16, onnx, exported = table.rows
    assert fp32.status == "ok" and fp32.mean_oks == pytest.approx(1.0)
    assert fp16.status == "skipped" and "CUDA" in fp16.reason
    for row in (fp32, bf16, onnx, exported):
        assert row.status == "ok", row.reason
        assert row.latency_ms_p50 > 0 and row.fps > 0 and row.fps_latency > 0
        assert row.box_ap == 0.25 and row.kp_ap == 0.5
        assert row.detections == 10  # 5 per image, 2 images
        assert row.bench["iters"] == 2 and row.bench["precision"] == row.precision
    assert bf16.precision == "bf16" and 0.0 <= bf16.mean_oks <= 1.0
    assert onnx.mean_oks > 0.999 and onnx.oks50_fraction == 1.0
    assert exported.mean_oks == pytest.approx(1.0)
    assert "backbone" in exported.notes and "opset" in onnx.notes
    doc = json.loads(json.dumps(table.to_json()))
    assert doc["reference"] == "fp32" and len(doc["rows"]) == 5
    text = table.format()
    assert "onnx" in text and "skipped" in text and "OKS vs fp32" in text


def _card(folder: Path, fmt: str, weights: Path, arch: bool) -> Path:
    lines = [
        "schema = 1",
        "[model]",
        f'name = "tiny-{fmt}"',
        f'format = "{fmt}"',
        f'weights = "{weights.name}"',
        f'sha256 = "{sha256_file(weights)}"',
    ]
    if arch:
        lines.append('architecture = "pytest_kpmodel.zoo:keypointrcnn_compact"')
        lines.append("[model.kwargs]")
        lines += [f"{k} = {json.dumps(v)}" for k, v in TINY_KWARGS.items()]
    return write_card(folder, "\n".join(lines) + "\n")


def _exported_card(work: Path, fmt: str, folder: Path, arch: bool):
    """A card in ``folder`` for the file the parity run exported in ``fmt``."""
    name = {"onnx": "model.onnx", "exported": "model.pt2"}[fmt]
    folder.mkdir()
    weights = folder / name
    weights.write_bytes((work / fmt / name).read_bytes())
    return load_card(_card(folder, fmt, weights, arch=arch))


def _compare(eager, other, atol_xy, atol_score):
    assert len(eager) == len(other)
    for a, b in zip(eager, other, strict=True):
        assert torch.equal(a.labels, b.labels)
        torch.testing.assert_close(b.boxes, a.boxes, atol=atol_xy, rtol=0)
        torch.testing.assert_close(b.scores, a.scores, atol=atol_score, rtol=0)
        torch.testing.assert_close(b.keypoints[..., :2], a.keypoints[..., :2], atol=atol_xy, rtol=0)
        torch.testing.assert_close(
            b.keypoints[..., 2], a.keypoints[..., 2], atol=atol_score, rtol=0
        )


IMAGES = [torch.rand(3, 72, 96, generator=torch.Generator().manual_seed(1)),
          torch.rand(3, 120, 80, generator=torch.Generator().manual_seed(2))]  # fmt: skip


def test_onnx_card_loads_and_matches_eager(parity_run, tiny, tmp_path):
    _, work, _ = parity_run
    card = _exported_card(work, "onnx", tmp_path / "onnx", arch=False)
    model = load_model(card, LoadOptions())
    assert model.num_keypoints == 17 and model.device == torch.device("cpu")
    # one image per call, like the ONNX model (torchvision pads a batch to one size, which
    # changes the detections of the smaller images)
    eager = [tiny.predict([im])[0] for im in IMAGES]
    _compare(eager, model.predict(IMAGES), 1e-3, 1e-3)
    with pytest.raises(AdapterError, match="precision"):
        load_model(card, LoadOptions(precision="bf16"))


def test_onnx_cuda_without_provider_is_a_clear_error(parity_run, monkeypatch):
    import onnxruntime as ort

    from pytest_kpmodel.adapters.onnx_format import OnnxDetectionModel

    _, work, _ = parity_run
    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CPUExecutionProvider"])
    with pytest.raises(AdapterError, match="CUDAExecutionProvider"):
        OnnxDetectionModel(work / "onnx" / "model.onnx", "cuda", 17)


def test_onnx_external_data_outside_the_folder_is_refused(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    w = helper.make_tensor("w", TensorProto.FLOAT, [1], [1.0])
    w.ClearField("float_data")
    w.data_location = TensorProto.EXTERNAL
    w.external_data.add(key="location", value="../../etc/passwd")
    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "w"], ["y"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])], [w],
    )  # fmt: skip
    folder = tmp_path / "evil"
    folder.mkdir()
    weights = folder / "model.onnx"
    weights.write_bytes(helper.make_model(graph).SerializeToString())
    assert onnx.load(str(weights), load_external_data=False)
    card = load_card(_card(folder, "onnx", weights, arch=False))
    with pytest.raises(AdapterError, match="outside"):
        load_model(card, LoadOptions())


def test_exported_parts_card_needs_allow_code_and_matches_eager(parity_run, tiny, tmp_path):
    _, work, _ = parity_run
    card = _exported_card(work, "exported", tmp_path / "exported", arch=True)
    with pytest.raises(AdapterError, match="--kp-allow-code"):
        load_model(card, LoadOptions())
    model = load_model(card, LoadOptions(allow_code=True))
    _compare(tiny.predict(IMAGES), model.predict(IMAGES), 1e-5, 1e-5)
    # batched like the eager model, and the stage hooks see the exported parts
    assert len(model.predict(IMAGES)) == 2
    r = measure(model, images=IMAGES[:1], settings=BenchSettings(
        iters=1, warmup=0, image_size=None, stage_iters=1))  # fmt: skip
    assert r.stages["stage_kind"] == "torchvision-rcnn"


def test_exported_parts_without_architecture_is_a_clear_error(parity_run, tmp_path):
    _, work, _ = parity_run
    card = _exported_card(work, "exported", tmp_path / "noarch", arch=False)
    with pytest.raises(AdapterError, match="architecture"):
        load_model(card, LoadOptions(allow_code=True))


class FixedDetector(torch.nn.Module):
    """A detector with fixed-size outputs (2 detections): exportable as one program."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3)

    def forward(self, images):
        out = []
        for im in images:
            f = self.conv(im[None]).mean(dim=(2, 3))[0]
            boxes = torch.sigmoid(f[:4]).repeat(2, 1) * 50.0
            boxes = torch.cat([boxes[:, :2], boxes[:, :2] + boxes[:, 2:]], dim=1)
            kps = torch.sigmoid(f[4:6]).repeat(2, 17, 1) * 40.0
            out.append({
                "boxes": boxes,
                "labels": torch.ones(2, dtype=torch.int64),
                "scores": torch.sigmoid(f[6:8]),
                "keypoints": torch.cat([kps, torch.ones(2, 17, 1)], dim=-1),
                "keypoints_scores": torch.sigmoid(f[7]).repeat(2, 17),
            })  # fmt: skip
        return out


def test_exported_whole_program_card(tmp_path):
    torch.manual_seed(0)
    eager = TorchDetectionModel(FixedDetector().eval(), LoadOptions(), 17)
    image = torch.rand(3, 32, 40)
    programs = export.export_program(eager, [image])
    assert set(programs) == {FULL_PROGRAM}
    folder = tmp_path / "whole"
    weights = save_programs(programs, folder / "model.pt2")
    card = load_card(_card(folder, "exported", weights, arch=False))
    model = load_model(card, LoadOptions(allow_code=True))
    _compare(eager.predict([image, image]), model.predict([image, image]), 1e-5, 1e-5)


def test_exports_of_opaque_models_are_unavailable(tiny):
    scripted = TorchDetectionModel(torch.jit.script(torch.nn.Identity()), LoadOptions(), 17)
    with pytest.raises(ExportUnavailable, match="eager"):
        export.export_onnx(scripted, Path("unused.onnx"), torch.rand(3, 8, 8))
    context = parity._Context(scripted, None, None, [], None, None, BenchSettings(), 1, (), 0.0,
                              False)  # fmt: skip
    row = parity._run_variant(context, "exported", Path("/nonexistent/x"))
    assert row.status == "skipped"


def test_oks_helpers():
    from pytest_kpmodel.adapters.base import Prediction

    kps = torch.tensor([[[10.0, 10.0, 1.0], [20.0, 20.0, 1.0]]])
    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0]])  # area 100
    sigmas = (0.1, 0.2)
    from pytest_kpmodel.robustness.oks import oks_matrix

    m = oks_matrix(kps, torch.tensor([100.0]), kps + torch.tensor([3.0, 4.0, 0.0]), sigmas)
    expected = sum(math.exp(-25.0 / (2 * 100 * (2 * s) ** 2)) for s in sigmas) / 2
    assert m.shape == (1, 1) and float(m[0, 0]) == pytest.approx(expected)
    ref = Prediction(boxes.repeat(2, 1), torch.tensor([0.9, 0.8]), torch.tensor([1, 1]),
                     torch.cat([kps, kps + 100]))  # fmt: skip
    # the variant lists the same two people in the other order, plus one of another label
    other = Prediction(torch.zeros(3, 4), torch.tensor([0.5, 0.5, 0.5]), torch.tensor([1, 1, 2]),
                       torch.cat([kps + 100, kps, kps]))  # fmt: skip
    assert parity.match_oks(ref, other, sigmas) == pytest.approx([1.0, 1.0])
    assert parity.match_oks(ref, other, sigmas, min_score=0.85) == pytest.approx([1.0])
    lonely = Prediction(torch.zeros(1, 4), torch.tensor([0.5]), torch.tensor([2]), kps)
    assert parity.match_oks(ref, lonely, sigmas) == [0.0, 0.0]  # wrong label: unmatched
