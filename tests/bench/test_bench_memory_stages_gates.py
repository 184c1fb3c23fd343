"""RSS sampler, R-CNN stage hooks, speed gates and the xdist helper."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest
import torch

from pytest_kpmodel.bench.machine import machine_info_extra
from pytest_kpmodel.bench.measure import measure
from pytest_kpmodel.bench.memory import MIB, RssSampler, rss_reader
from pytest_kpmodel.bench.result import BenchResult
from pytest_kpmodel.bench.settings import BenchSettings
from pytest_kpmodel.bench.stages import STAGES, StageTimer, detection_module, measure_stages
from pytest_kpmodel.bench.thresholds import speed_check, speed_gates
from pytest_kpmodel.bench.timing import summarize
from pytest_kpmodel.distributed import XDIST_REASON, xdist_reason


def test_rss_sampler_peak_minus_before_with_a_fake_reader():
    values = iter([100 * MIB, 120 * MIB, 180 * MIB, 130 * MIB] + [110 * MIB] * 10_000)
    sampler = RssSampler(interval_s=0.0005, reader=lambda: next(values))
    sampler.start()
    time.sleep(0.05)
    sampler.stop()
    out = sampler.to_json()
    assert out["rss_before_mib"] == pytest.approx(100.0)
    assert out["rss_peak_mib"] == pytest.approx(180.0)
    assert out["rss_peak_increase_mib"] == pytest.approx(80.0)
    assert out["rss_samples"] >= 4


@pytest.mark.parametrize("use_hwm", [None, False])
def test_rss_peak_sees_a_real_allocation_freed_before_the_end(use_hwm):
    read, reason = rss_reader()
    if read is None:
        pytest.skip(reason)
    sampler = RssSampler(interval_s=0.001, use_hwm=use_hwm)
    sampler.start()
    block = torch.ones(64 * MIB // 4)  # 64 MiB, touched
    time.sleep(0.05)
    del block
    sampler.stop()
    out = sampler.to_json()
    assert out["rss_peak_increase_mib"] > 32, out
    assert out["rss_peak_mib"] - out["rss_before_mib"] == pytest.approx(
        out["rss_peak_increase_mib"]
    )
    if use_hwm is False:
        assert out["rss_method"].startswith("sampled")


def test_rss_sampler_without_reader_reports_why():
    sampler = RssSampler(use_hwm=False)
    sampler.read, sampler.unavailable = None, "no RSS here"
    sampler.start()
    sampler.stop()
    assert sampler.to_json() == {"rss_skipped": "no RSS here"}


@pytest.fixture(scope="module")
def tiny_model():
    from kp_factories import tiny_module
    from pytest_kpmodel.adapters.options import LoadOptions
    from pytest_kpmodel.adapters.torch_module import TorchDetectionModel

    return TorchDetectionModel(tiny_module(), LoadOptions(), 17, "tiny")


def test_stage_hooks_on_a_tiny_rcnn_sum_to_about_the_total(tiny_model):
    module = tiny_model.module
    assert detection_module(tiny_model) is module
    batches = [[torch.rand(3, 72, 96)], [torch.rand(3, 80, 64)]]
    out = measure_stages(
        tiny_model, batches, 2, lambda: None, time.perf_counter, tiny_model.predict
    )
    assert out["stage_kind"] == "torchvision-rcnn"
    assert set(out["stages_ms"]) == {*STAGES, "other"}
    assert all(v >= 0 for v in out["stages_ms"].values())
    # per call: the stages are nested inside the call, and cover most of it
    fractions = []
    with StageTimer(module, lambda: None, time.perf_counter) as timer:
        for batch in batches * 2:
            t0 = time.perf_counter()
            tiny_model.predict(batch)
            total = (time.perf_counter() - t0) * 1000.0
            stages = timer.take()
            assert all(stages[s] > 0 for s in STAGES)
            assert sum(stages.values()) <= total
            fractions.append(sum(stages.values()) / total)
    assert sorted(fractions)[len(fractions) // 2] > 0.5
    # hooks and the postprocess wrapper are gone afterwards
    for name in ("transform", "backbone", "rpn", "roi_heads"):
        sub = getattr(module, name)
        assert not sub._forward_hooks and not sub._forward_pre_hooks
    assert "postprocess" not in vars(module.transform)


def test_stage_timer_with_a_fake_clock_attributes_time_to_stages(tiny_model):
    module = tiny_model.module
    now = [0.0]

    def clock():
        now[0] += 1.0  # every timestamp is one second later
        return now[0]

    syncs = []
    with StageTimer(module, lambda: syncs.append(1), clock) as timer:
        tiny_model.predict([torch.rand(3, 72, 96)])
        stages = timer.take()
    # each stage is (its end stamp - its start stamp); nested stamps add seconds
    assert stages["backbone"] == pytest.approx(1000.0)
    assert stages["rpn"] == pytest.approx(1000.0)
    assert stages["preprocess"] == pytest.approx(1000.0)
    assert stages["postprocess"] == pytest.approx(1000.0)
    assert len(syncs) == 10  # one synchronisation per timestamp (5 stages x start/end)


def test_stage_pass_in_measure(tiny_model):
    settings = BenchSettings(iters=2, warmup=0, image_size=(72, 96), num_images=1,
                                   stage_iters=2)  # fmt: skip
    r = measure(tiny_model, images=[torch.rand(3, 72, 96)], settings=settings)
    assert r.stages["stage_kind"] == "torchvision-rcnn"
    assert r.to_json()["stages_ms"]["backbone"] > 0
    assert r.detections["per_image"] == [5]  # the tiny model keeps 5 detections per image


def _result(p50=30.0, p90=40.0, vram=None, wall_s=0.3):
    lat = summarize([p50 / 1000] * 5 + [p90 / 1000] * 5, 1, wall_s)
    memory = {"peak_vram_mib": vram}
    return BenchResult(
        settings=BenchSettings(), device="cuda:0" if vram is not None else "cpu",
        device_name="x", latency=lat, warmup=10, images=1, image_sizes=[[800, 1333]],
        cpu_threads=1, interop_threads=1, cudnn_benchmark_restored_to=False, memory=memory,
    )  # fmt: skip


def test_speed_gates_directions_and_all_misses_at_once():
    r = _result(p50=30.0, p90=40.0, vram=900.0, wall_s=1.0)  # 10 images / 1 s = 10 FPS
    gates = speed_gates(
        r, {"fps": 20, "latency_p50_ms": 25, "latency_p90_ms": 50, "vram_mib": 1000, "kp_ap": 0.5}
    )
    by_name = {g.name.split(" (")[0]: g for g in gates}
    assert set(by_name) == {"FPS", "latency p50", "latency p90", "peak VRAM"}
    assert by_name["FPS"].op == ">=" and not by_name["FPS"].passed
    assert by_name["latency p50"].op == "<=" and not by_name["latency p50"].passed
    assert by_name["latency p90"].passed and by_name["peak VRAM"].passed
    check = speed_check(r, {"fps": 20, "latency_p50_ms": 25})
    assert len(check.failures) == 2 and check.skipped is None
    assert "FPS" in check.failures[0] and "10.000 FPS < 20.000 FPS" in check.failures[0]


def test_vram_gate_on_cpu_skips_with_reason_unless_something_fails():
    r = _result(vram=None, wall_s=0.1)  # 100 FPS
    assert speed_gates(r, {"vram_mib": 100}) == []
    check = speed_check(r, {"vram_mib": 100, "fps": 10})
    assert check.skipped and "vram_mib" in check.skipped and not check.failures
    check = speed_check(r, {"vram_mib": 100, "fps": 1000})
    assert check.failures and check.skipped is None


def test_xdist_reason(monkeypatch):
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    assert xdist_reason(SimpleNamespace(workerinput={"workerid": "gw0"}))
    assert xdist_reason(SimpleNamespace(option=SimpleNamespace(numprocesses=2)))
    assert xdist_reason(SimpleNamespace(option=SimpleNamespace(numprocesses=0))) is None
    assert xdist_reason(SimpleNamespace()) is None
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw1")
    assert xdist_reason(None) == XDIST_REASON


def test_machine_info_extra_is_json():
    import json

    info = machine_info_extra()
    json.dumps(info)
    assert info["torch"] == torch.__version__ and "gpu" in info and "gpu_driver" in info
