"""Storing a run through pytest-benchmark: pedantic rounds, extra_info, machine_info, JSON."""

from __future__ import annotations

import json

SPEC = """
import time

import pytest
import torch

from pytest_kpmodel.bench.measure import measure
from pytest_kpmodel.bench.settings import BenchError, BenchSettings


class Pred:
    def __len__(self):
        return 2


class Model:
    device = torch.device("cpu")
    num_keypoints = 17
    precision = "fp32"
    calls = 0

    def predict(self, images):
        Model.calls += 1
        time.sleep(0.002)
        return [Pred() for _ in images]


SETTINGS = BenchSettings(iters=7, warmup=2, image_size=(16, 16), batch_size=2,
                               num_images=2, stage_iters=0)
IMAGES = [torch.zeros(3, 8, 8, dtype=torch.uint8), torch.ones(3, 8, 8, dtype=torch.uint8)]


def test_speed(benchmark):
    Model.calls = 0
    r = measure(Model(), images=IMAGES, settings=SETTINGS, benchmark=benchmark)
    assert r.driver == ("kpmodel" if benchmark.disabled else "pytest-benchmark")
    assert Model.calls == 2 + 7  # warm-up rounds + timed rounds, nothing else
    assert r.latency.iterations == 7 and r.latency.p50 >= 2.0


def test_second_use_is_a_clear_error(benchmark):
    measure(Model(), images=IMAGES, settings=SETTINGS, benchmark=benchmark)
    if benchmark.disabled:
        return
    with pytest.raises(BenchError, match="once per test"):
        measure(Model(), images=IMAGES, settings=SETTINGS, benchmark=benchmark)
"""

CONFTEST = """
def pytest_benchmark_update_machine_info(config, machine_info):
    from pytest_kpmodel.bench.machine import machine_info_extra

    machine_info.update(machine_info_extra())
"""


def test_store_through_pytest_benchmark(pytester):
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_speed_spec=SPEC)
    result = pytester.runpytest_subprocess("--benchmark-json=bench.json", "-p", "no:kpmodel")
    result.assert_outcomes(passed=2)
    data = json.loads((pytester.path / "bench.json").read_text())
    assert data["machine_info"]["torch"]
    assert "gpu" in data["machine_info"] and "cuda" in data["machine_info"]
    run = next(b for b in data["benchmarks"] if b["name"] == "test_speed")
    assert run["stats"]["rounds"] == 7 and run["options"]["timer"] == "perf_counter"
    extra = run["extra_info"]
    for key in (
        "fps",
        "fps_latency",
        "fps_throughput",
        "latency_ms",
        "memory",
        "stages_ms",
        "detections_per_image",
        "precision",
        "batch_size",
        "image_size",
        "cpu_threads",
    ):
        assert key in extra, key
    assert extra["batch_size"] == 2 and extra["precision"] == "fp32"
    assert extra["image_size"] == [16, 16]
    assert extra["detections_per_image"]["mean"] == 2
    # pytest-benchmark timed the same synchronised calls we did
    ours = extra["latency_ms"]["p50"] / 1000
    assert abs(run["stats"]["median"] - ours) <= 0.5 * ours


def test_disabled_benchmark_falls_back_to_our_loop():
    """--benchmark-disable (or xdist) disables the fixture: pedantic would call the target
    once; measure() runs its own loop instead and still fills extra_info."""
    import torch

    from pytest_kpmodel.bench.measure import measure
    from pytest_kpmodel.bench.settings import BenchSettings

    class Disabled:
        disabled = True
        extra_info: dict = {}

        def pedantic(self, *a, **k):
            raise AssertionError("pedantic must not be used when disabled")

    class Model:
        device = torch.device("cpu")
        num_keypoints = 17

        def predict(self, images):
            return [[] for _ in images]

    pb = Disabled()
    settings = BenchSettings(iters=3, warmup=1, image_size=(8, 8), stage_iters=0)
    r = measure(Model(), images=[torch.zeros(3, 8, 8)], settings=settings, benchmark=pb)
    assert r.driver == "kpmodel" and r.latency.iterations == 3
    assert pb.extra_info["iters"] == 3


def test_machine_info_extra_is_json():
    import torch

    from pytest_kpmodel.bench.machine import machine_info_extra

    info = machine_info_extra()
    json.dumps(info)
    assert info["torch"] == torch.__version__ and "gpu" in info and "gpu_driver" in info
