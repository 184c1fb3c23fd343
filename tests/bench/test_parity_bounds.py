"""kp_parity is bounded by its settings, shows one progress step per variant and leaves no
folder behind, neither its own nor the ones torch.export and ONNX Runtime create on their own;
on a CPU that emulates bf16 the bf16 row predicts but is not timed (the capability check is
faked: the tests must not depend on the CPU they run on)."""

from __future__ import annotations

import os
import tempfile

import pytest

from kp_factories import make_dataset, tiny_module
from pytest_kpmodel import progress
from pytest_kpmodel.adapters.options import LoadOptions
from pytest_kpmodel.adapters.torch_module import TorchDetectionModel
from pytest_kpmodel.bench import export, parity, precision
from pytest_kpmodel.bench.settings import BenchSettings
from pytest_kpmodel.data import load_dataset


@pytest.fixture(scope="module")
def two_images(tmp_path_factory):
    return load_dataset(make_dataset(tmp_path_factory.mktemp("parity-bounds"), n=2))


@pytest.fixture
def tiny():
    return TorchDetectionModel(tiny_module(), LoadOptions(), 17, "tiny")


@pytest.fixture
def native_bf16(monkeypatch):
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: True)


@pytest.fixture
def emulated_bf16(monkeypatch):
    """A CPU that emulates bf16 at twice the fp32 time: the tiny model's row fits the budget."""
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: False)
    monkeypatch.setattr(precision, "emulated_bf16_slowdown", lambda: 2.0)


@pytest.fixture
def shown():
    progress.configure(verbosity=0, isatty=True)
    yield
    progress.reset()


def test_forward_passes_are_images_plus_warmup_plus_iters_per_variant(
    tiny, two_images, native_bf16
):
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


def _count_calls(tiny, fn):
    calls: list[int] = []
    handle = tiny.module.register_forward_pre_hook(lambda *_: calls.append(1))
    try:
        return fn(), len(calls)
    finally:
        handle.remove()


def test_emulated_bf16_predicts_but_is_not_timed(tiny, two_images, emulated_bf16):
    settings = BenchSettings(iters=3, warmup=1, image_size=(72, 96), num_images=2)
    table, calls = _count_calls(
        tiny, lambda: parity.run(tiny, None, two_images, ("fp32", "bf16"), settings=settings)
    )
    bf16 = table.row("bf16")
    assert bf16.status == "ok" and bf16.precision == "bf16"
    assert bf16.speed_skipped == precision.BF16_EMULATED_CPU
    assert bf16.notes.startswith("bf16 is emulated on this CPU (no AVX512-BF16/AMX)")
    assert (bf16.latency_ms_p50, bf16.fps, bf16.fps_latency, bf16.bench) == (None, None, None, {})
    assert bf16.detections == 10 and bf16.mean_oks is not None  # the accuracy columns are there
    assert bf16.forward_passes == 2  # its predictions only
    assert calls == 2 + 4 + 2  # reference, fp32 timed (1 + 3), bf16 predictions
    fp32 = table.row("fp32")  # fp32 is timed as ever
    assert fp32.speed_skipped is None and fp32.latency_ms_p50 > 0
    assert table.to_json()["rows"][1]["speed_skipped"] == precision.BF16_EMULATED_CPU
    assert "speed not measured" in table.format()


def test_emulated_bf16_is_timed_when_asked(tiny, two_images, emulated_bf16):
    settings = BenchSettings(iters=2, warmup=0, image_size=(72, 96), num_images=1)
    table = parity.run(tiny, None, two_images, ("bf16",), settings=settings, run_emulated_bf16=True)
    bf16 = table.row("bf16")
    assert bf16.speed_skipped is None and bf16.latency_ms_p50 > 0
    assert bf16.forward_passes == 2 + 2


def test_emulated_bf16_step_says_it_is_not_timed(tiny, two_images, emulated_bf16, capsys, shown):
    settings = BenchSettings(iters=2, warmup=0, image_size=(72, 96), num_images=1)
    parity.run(tiny, None, two_images, ("bf16",), settings=settings)
    err = capsys.readouterr().err
    assert "kp_parity bf16: building, predicting 2 images (emulated bf16: not timed)" in err


def test_emulated_bf16_projected_over_the_budget_is_not_run(
    tiny, two_images, emulated_bf16, monkeypatch, capsys, shown
):
    monkeypatch.setattr(precision, "emulated_bf16_slowdown", lambda: 1e9)
    settings = BenchSettings(iters=2, warmup=0, image_size=(72, 96), num_images=1)
    table, calls = _count_calls(
        tiny, lambda: parity.run(tiny, None, two_images, ("fp32", "bf16"), settings=settings)
    )
    bf16 = table.row("bf16")
    assert bf16.status == "skipped" and bf16.forward_passes is None
    assert bf16.reason.startswith("bf16 is emulated on this CPU (no AVX512-BF16/AMX)")
    assert "1000000000x its fp32 time" in bf16.reason and "predicting 2 images" in bf16.reason
    assert "kp_bench(num_images=...)" in bf16.reason  # what to do about it
    assert calls == 2 + 2  # the reference and fp32's timed calls: no bf16 call at all
    assert f"kp_parity bf16: not run: {bf16.reason}" in capsys.readouterr().err
    # asked to, it runs whatever the projection
    table = parity.run(tiny, None, two_images, ("bf16",), settings=settings, run_emulated_bf16=True)
    assert table.row("bf16").status == "ok" and table.row("bf16").latency_ms_p50 > 0


def test_a_slowdown_probe_that_fails_does_not_stop_the_row(
    tiny, two_images, emulated_bf16, monkeypatch
):
    def broken() -> float:
        raise RuntimeError("no autocast here")

    monkeypatch.setattr(precision, "emulated_bf16_slowdown", broken)
    table = parity.run(tiny, None, two_images, ("bf16",), measure_speed=False)
    assert table.row("bf16").status == "ok"


def test_emulated_bf16_slowdown_is_a_measured_factor():
    assert precision.emulated_bf16_slowdown() > 0


def test_bf16_emulated_reads_the_cpu_capability(monkeypatch):
    import torch

    for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"):
        monkeypatch.setattr(torch.cpu, name, lambda: False, raising=False)
    monkeypatch.setattr(precision.platform, "machine", lambda: "x86_64")
    assert precision.bf16_emulated("cpu") == precision.BF16_EMULATED_CPU
    assert precision.bf16_emulated("cuda:0") is None  # GPUs are not second-guessed
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True)
    assert precision.bf16_emulated("cpu") is None
    # a torch build without the private helpers: not native on x86
    monkeypatch.delattr(torch.cpu, "_is_avx512_bf16_supported")
    monkeypatch.delattr(torch.cpu, "_is_amx_tile_supported")
    assert precision.cpu_has_native_bf16() is False
