"""kp_parity is bounded by its settings, shows one progress step per variant and leaves no
folder behind, neither its own nor the ones torch.export and ONNX Runtime create on their own."""

from __future__ import annotations

import os
import tempfile

import pytest

from kp_factories import make_dataset, tiny_module
from pytest_kpmodel import progress
from pytest_kpmodel.adapters.options import LoadOptions
from pytest_kpmodel.adapters.torch_module import TorchDetectionModel
from pytest_kpmodel.bench import export, parity
from pytest_kpmodel.bench.settings import BenchSettings
from pytest_kpmodel.data import load_dataset


@pytest.fixture(scope="module")
def two_images(tmp_path_factory):
    return load_dataset(make_dataset(tmp_path_factory.mktemp("parity-bounds"), n=2))


@pytest.fixture
def tiny():
    return TorchDetectionModel(tiny_module(), LoadOptions(), 17, "tiny")


@pytest.fixture
def shown():
    progress.configure(verbosity=0, isatty=True)
    yield
    progress.reset()


def test_forward_passes_are_images_plus_warmup_plus_iters_per_variant(tiny, two_images):
    calls = []
    handle = tiny.module.register_forward_pre_hook(lambda *_: calls.append(1))
    settings = BenchSettings(iters=3, warmup=1, image_size=(72, 96), num_images=2)
    try:
        table = parity.run(tiny, None, two_images, ("fp32", "bf16"), settings=settings)
    finally:
        handle.remove()
    assert [r.status for r in table.rows] == ["ok", "ok"]
    # fp32: 2 reference predictions + (1 warm-up + 3 timed); bf16: 2 predictions + (1 + 3); the
    # stage times come from the timed calls on the CPU
    assert len(calls) == 2 + 4 + 2 + 4
    assert table.row("bf16").bench["stage_pass"] == "timed"
    assert table.row("fp32").forward_passes == 4  # its predictions are the reference's
    assert table.row("bf16").forward_passes == 2 + 4
    assert all(r.seconds > 0 for r in table.rows)


def test_parity_settings_bound_a_run_without_a_marker():
    s = parity.parity_settings({})
    assert (s.num_images, s.warmup, s.iters) == (50, 1, 10)
    s = parity.parity_settings({"iters": 2, "num_images": 3})
    assert (s.num_images, s.warmup, s.iters) == (3, 1, 2)


def test_each_variant_is_a_step_and_no_temp_folder_is_left(
    tiny, two_images, tmp_path, monkeypatch, capsys, shown
):
    tmp = tmp_path / "system-tmp"
    tmp.mkdir()
    # the folder Python, torch.export (torchinductor_$USER) and ONNX Runtime (.ses) would use
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    monkeypatch.setenv("TMPDIR", str(tmp))
    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR", raising=False)
    table = parity.run(tiny, None, two_images, ("fp32", "onnx", "exported"), measure_speed=False)
    assert [r.status for r in table.rows] == ["ok", "ok", "ok"], table.format()
    assert sorted(os.listdir(tmp)) == []
    assert os.environ["TMPDIR"] == str(tmp)  # the libraries' scratch folder was scoped
    assert "TORCHINDUCTOR_CACHE_DIR" not in os.environ
    err = capsys.readouterr().err
    assert "kpmodel: kp_parity: the fp32 reference, predicting 2 images with tiny" in err
    for variant in ("fp32", "onnx", "exported"):
        assert f"kpmodel: kp_parity {variant}: building, predicting" in err
    assert err.count(": done in ") == 4  # the reference and the three variants


def test_a_broken_variant_does_not_keep_its_folder(tiny, two_images, tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))

    def broken(*_args, **_kwargs):
        raise RuntimeError("exporter exploded")

    monkeypatch.setattr(export, "export_onnx", broken)
    table = parity.run(tiny, None, two_images, ("onnx",), measure_speed=False)
    assert table.row("onnx").status == "failed" and "exploded" in table.row("onnx").reason
    assert os.listdir(tmp_path) == []
