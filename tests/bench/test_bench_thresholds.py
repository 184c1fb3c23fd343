"""Speed gates: directions, every miss at once, and skips with the reason."""

from __future__ import annotations

from pytest_kpmodel.bench.result import BenchResult
from pytest_kpmodel.bench.settings import BenchSettings
from pytest_kpmodel.bench.thresholds import speed_check, speed_gates
from pytest_kpmodel.bench.timing import summarize


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
