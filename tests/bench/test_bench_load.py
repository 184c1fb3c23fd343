"""The machine's load during timed regions (bench/load.py): the figures, the "machine busy"
sentence, and their place in a benchmark's result."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from pytest_kpmodel.bench import load
from pytest_kpmodel.bench.load import LoadReading, LoadSampler

LINUX = pytest.mark.skipif(not os.path.exists("/proc/stat"), reason="needs Linux /proc/stat")


def test_busy_sentence_names_the_load_and_the_cores():
    reading = LoadReading(cores=2, torch_threads=2, runnable=6.1, other_cpu=1.8).judge()
    assert reading.busy == (
        "machine busy: load 6.1 on 2 cores during timing; other processes used 1.8 of 2 cores"
    )
    assert reading.to_json()["busy"] == reading.busy and reading.to_json()["load"] == 6.1


def test_quiet_machine_is_not_busy():
    reading = LoadReading(cores=2, torch_threads=2, runnable=2.2, other_cpu=0.1, steal_pct=0.5)
    assert reading.judge().busy is None
    assert reading.describe() == "load 2.2 on 2 cores, torch 2 threads, others 0.1 cores, steal 0%"


def test_steal_and_gpu_neighbours_count_as_busy():
    reading = LoadReading(cores=8, steal_pct=25.0, gpu_processes=[{"pid": 7, "gpu": 0}]).judge()
    assert "CPU steal 25%" in reading.busy and "1 other process(es) on the GPU (7)" in reading.busy


def test_load_1m_stands_in_when_nothing_was_sampled():
    assert LoadReading(cores=2, load_1m=5.0).judge().busy.startswith("machine busy: load 5.0")


def test_missing_sources_give_none_not_errors(monkeypatch):
    monkeypatch.setattr(load, "_proc_stat", lambda: None)
    monkeypatch.setattr(load, "_load_1m", lambda: None)
    sampler = LoadSampler(torch_threads=1)
    sampler.start()
    reading = sampler.stop()
    assert reading.runnable is None and reading.other_cpu is None and reading.busy is None


def test_stop_without_start_is_no_reading():
    assert LoadSampler().stop() is None


@LINUX
def test_a_cpu_burning_neighbour_is_seen():
    burner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)  # let it start
        sampler = LoadSampler(torch_threads=1, interval_s=0.05)
        sampler.start()
        time.sleep(1.0)
        reading = sampler.stop()
    finally:
        burner.kill()
        burner.wait()
    assert reading.samples >= 5 and reading.wall_s >= 1.0
    # The burner held (most of) a core the whole second; this process slept.
    assert reading.other_cpu is not None and reading.other_cpu >= 0.5, reading
    assert reading.runnable is not None and reading.runnable >= 0.5, reading
    assert "other processes used" in (reading.busy or ""), reading


def test_gpu_processes_without_nvml_is_none(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import fails
    assert load.gpu_processes() is None


def test_measure_records_the_load():
    from bench_fakes import FakeModel, images

    from pytest_kpmodel.bench.measure import measure
    from pytest_kpmodel.bench.settings import BenchSettings

    settings = BenchSettings(image_size=None, warmup=1, iters=3, num_images=1, stage_iters=0)
    result = measure(FakeModel(), images=images((8, 8)), settings=settings)
    assert result.load["cores"] == load.cores() and "busy" in result.load
    assert result.to_json()["load"] == result.load


def test_worst_reading_is_the_busiest():
    quiet, busy = {"load": 9.0, "busy": None}, {"load": 3.0, "busy": "machine busy: x"}
    assert load.worst([quiet, {}, busy]) is busy
    assert load.worst([{}]) is None


def test_machine_info_carries_the_load():
    from pytest_kpmodel.bench.machine import machine_info_extra

    busy = {"load": 6.1, "busy": "machine busy: load 6.1 on 2 cores during timing"}
    info = machine_info_extra([{"load": {"load": 1.0, "busy": None}}, {"load": busy}])
    assert info["load"] == busy and info["cpu_cores"] == load.cores()
