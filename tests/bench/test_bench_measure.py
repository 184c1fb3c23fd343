"""The measurement on fake models: statistics, warm-up, images, cuDNN and the CUDA call order."""

from __future__ import annotations

import pytest
import torch
from bench_fakes import FakeClock, FakeModel, images

from pytest_kpmodel.bench import measure as measure_module
from pytest_kpmodel.bench.measure import measure, prepare_images
from pytest_kpmodel.bench.settings import BenchSettings


def test_measure_with_fake_clock_gives_exact_statistics():
    clock = FakeClock()
    durations = [10.0, 50.0, 20.0, 40.0, 30.0]
    model = FakeModel(clock, [999.0] * 2 + durations)  # two warm-up calls, then the timed ones
    settings = BenchSettings(iters=5, warmup=2, image_size=(8, 8), num_images=1, stage_iters=0)
    r = measure(model, images=images((8, 8)), settings=settings, clock=clock)
    assert r.warmup == 2 and r.latency.iterations == 5
    assert r.times_ms == pytest.approx(durations)
    assert r.latency.p50 == pytest.approx(30.0)
    assert r.latency.p90 == pytest.approx(46.0)
    assert r.latency.iqr == pytest.approx(20.0)
    assert r.latency.wall_s == pytest.approx(0.150)  # warm-up excluded
    assert r.fps == pytest.approx(5 / 0.150)
    assert r.latency.fps_latency == pytest.approx(1000.0 / 30.0)
    assert r.detections["mean"] == 3 and r.detections["per_image"] == [3]
    assert r.cpu_threads == torch.get_num_threads()
    entry = r.to_json()
    assert entry["latency_ms"]["p50"] == pytest.approx(30.0)
    assert entry["fps"] == pytest.approx(r.fps) and entry["peak_vram_mib"] is None
    assert entry["batch_size"] == 1 and entry["precision"] == "fp32"
    assert entry["image_size"] == [8, 8]
    assert "p50 30.0 ms" in r.describe() and "FPS (throughput)" in r.describe()


def test_stage_pass_for_opaque_models_is_one_stage():
    clock = FakeClock()
    model = FakeModel(clock, [5.0])
    settings = BenchSettings(iters=3, warmup=0, image_size=(8, 8), stage_iters=4)
    r = measure(model, images=images((8, 8)), settings=settings, clock=clock)
    assert r.stages["stage_kind"] == "opaque"
    assert r.stages["stages_ms"] == {"model": pytest.approx(5.0)}
    assert r.stages["stage_iters"] == 4


def test_warmup_covers_every_shape_and_batch():
    log: list = []
    model = FakeModel(log=log)
    raw = images((8, 8), (8, 12), (12, 8))
    settings = BenchSettings(
        iters=4, warmup=1, batch_size=2, image_size=None, num_images=3, stage_iters=0
    )
    r = measure(model, images=raw, settings=settings)
    # 3 images in batches of 2 -> 2 distinct batches; warm-up raised from 1 to 2
    assert r.warmup == 2
    warm = [shapes for _, shapes, _ in log[: r.warmup]]
    timed = [shapes for _, shapes, _ in log[r.warmup : r.warmup + 4]]
    assert set(timed) <= set(warm)
    assert len(set(warm)) == 2
    per_shape = {}
    for shapes in warm:
        per_shape[shapes] = per_shape.get(shapes, 0) + 1
    assert all(count >= 1 for count in per_shape.values())
    assert r.image_sizes == [[8, 8], [8, 12], [12, 8]]


def test_image_size_resizes_real_content():
    img = torch.zeros(3, 10, 20, dtype=torch.uint8)
    img[:, :, 10:] = 255
    out = prepare_images([img], (20, 40))[0]
    assert out.shape == (3, 20, 40) and out.dtype == torch.float32
    assert out[:, :, :18].max() < 0.05 and out[:, :, 22:].min() > 0.95  # content kept
    assert prepare_images([img], None)[0].shape == (3, 10, 20)


def test_cudnn_benchmark_forced_off_and_restored():
    log: list = []
    model = FakeModel(log=log)
    before = torch.backends.cudnn.benchmark
    try:
        torch.backends.cudnn.benchmark = True
        settings = BenchSettings(iters=2, warmup=1, image_size=(8, 8), stage_iters=1)
        measure(model, images=images((8, 8)), settings=settings)
        assert torch.backends.cudnn.benchmark is True
        assert log and all(flag is False for _, _, flag in log)
        with pytest.raises(RuntimeError):  # restored on errors too

            class Boom(FakeModel):
                def predict(self, images):
                    raise RuntimeError("boom")

            measure(Boom(), images=images((8, 8)), settings=settings)
        assert torch.backends.cudnn.benchmark is True
    finally:
        torch.backends.cudnn.benchmark = before


def test_cuda_path_call_order(monkeypatch):
    """Peak counters reset after warm-up (after a sync and an empty_cache), every timed call
    is bracketed by synchronisations, and the peaks are read after the timed calls."""
    events: list = []
    monkeypatch.setattr(torch.cuda, "synchronize", lambda *a, **k: events.append("sync"))
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: events.append("empty_cache"))
    monkeypatch.setattr(torch.cuda, "reset_peak_memory_stats", lambda *a: events.append("reset"))
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda *a: 10 * 2**20)
    monkeypatch.setattr(
        torch.cuda, "max_memory_allocated", lambda *a: events.append("read") or 300 * 2**20
    )
    monkeypatch.setattr(torch.cuda, "max_memory_reserved", lambda *a: 512 * 2**20)
    monkeypatch.setattr(torch.cuda, "device_memory_used", lambda *a: 900 * 2**20, raising=False)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a: "Fake GPU")
    monkeypatch.setattr(measure_module, "_to_device", lambda t, device: t)

    class Logged(FakeModel):
        def predict(self, images):
            events.append("predict")
            return super().predict(images)

    model = Logged(device="cuda:0")
    settings = BenchSettings(iters=3, warmup=2, image_size=(8, 8), stage_iters=0)
    r = measure(model, images=images((8, 8)), settings=settings)

    predicts = [i for i, e in enumerate(events) if e == "predict"]
    assert len(predicts) == 5
    reset = events.index("reset")
    assert predicts[1] < reset < predicts[2]  # after the 2 warm-up calls, before timed ones
    assert events[reset - 2 : reset] == ["sync", "empty_cache"]
    assert events[reset + 1] == "sync"
    for i in predicts:
        assert events[i + 1] == "sync"  # synchronised before the end timestamp
    for i in predicts[2:]:
        assert events[i - 1] == "sync"  # nothing queued when the start timestamp is taken
    assert events.index("read") > predicts[-1]
    assert r.peak_vram_mib == pytest.approx(300.0)
    assert r.memory["peak_reserved_mib"] == pytest.approx(512.0)
    assert r.memory["allocated_before_mib"] == pytest.approx(10.0)
    assert r.memory["nvml_used_mib"] == pytest.approx(900.0)
    assert "device_memory_used" in r.memory["nvml_source"]
    assert r.device == "cuda:0" and r.device_name == "Fake GPU"


def test_cuda_path_through_pytest_benchmark_pedantic_keeps_the_order(monkeypatch):
    """The same order when pytest-benchmark's pedantic drives the rounds."""
    events: list = []
    monkeypatch.setattr(torch.cuda, "synchronize", lambda *a, **k: events.append("sync"))
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: None)
    monkeypatch.setattr(torch.cuda, "reset_peak_memory_stats", lambda *a: events.append("reset"))
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda *a: 0)
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda *a: 0)
    monkeypatch.setattr(torch.cuda, "max_memory_reserved", lambda *a: 0)
    monkeypatch.setattr(torch.cuda, "device_memory_used", lambda *a: 0, raising=False)
    monkeypatch.setattr(measure_module, "_to_device", lambda t, device: t)

    class Pedantic:
        """What pytest-benchmark's pedantic does with setup/target/rounds/warmup_rounds."""

        disabled = False
        extra_info: dict = {}

        def pedantic(self, target, setup, rounds, warmup_rounds, iterations):
            assert iterations == 1
            for _ in range(warmup_rounds + rounds):
                args, kwargs = setup()
                events.append("timer-start")
                target(*args, **kwargs)
                events.append("timer-end")

    class Logged(FakeModel):
        def predict(self, images):
            events.append("predict")
            return super().predict(images)

    pb = Pedantic()
    settings = BenchSettings(iters=2, warmup=1, image_size=(8, 8), stage_iters=0)
    r = measure(Logged(device="cuda:0"), images=images((8, 8)), settings=settings,
                      benchmark=pb)  # fmt: skip
    assert r.driver == "pytest-benchmark"
    first_timed = [i for i, e in enumerate(events) if e == "predict"][1]
    assert events.index("reset") < first_timed
    assert events.index("reset") > events.index("predict")
    # inside pytest-benchmark's timer: predict then sync
    for i, e in enumerate(events):
        if e == "predict":
            assert events[i - 1] == "timer-start" and events[i + 1] == "sync"
            assert events[i + 2] == "timer-end"
    assert pb.extra_info["latency_ms"]["p50"] == r.latency.p50


def test_kp_bench_warmup_2_iters_5_makes_7_forward_passes():
    """The issue's case: one timed shape, the default num_images=8 and stage_iters: 2 warm-up
    calls, 5 timed, the stages (opaque: the timed calls) from the timed calls themselves."""
    model = FakeModel(FakeClock())
    settings = BenchSettings.from_kwargs(warmup=2, iters=5, image_size=(8, 8))
    r = measure(model, images=images(*[(8, 8)] * 8), settings=settings, clock=model.clock)
    assert model.calls == 7 == settings.forward_passes(shapes=1)
    assert r.warmup == 2 and r.latency.iterations == 5
    assert r.images == 5  # the 3 images no timed call reaches are not loaded
    assert r.stages["stage_pass"] == "timed" and r.stages["stage_iters"] == 5
    assert r.stages["stages_ms"] == {"model": pytest.approx(10.0)}


def test_warmup_is_per_shape_and_before_every_timed_call():
    log: list = []
    model = FakeModel(log=log)
    raw = images((8, 8), (8, 12), (12, 8), (8, 8))
    settings = BenchSettings(iters=6, warmup=2, image_size=None, num_images=4, stage_iters=0)
    r = measure(model, images=raw, settings=settings)
    shapes = [s for _, s, _ in log]
    assert r.warmup == 6 and len(shapes) == 6 + 6  # 2 per distinct shape, 3 shapes
    warm = shapes[:6]
    assert all(warm.count(s) == 2 for s in set(warm)) and set(shapes[6:]) == set(warm)


def test_stage_pass_only_where_stamps_need_a_synchronisation():
    s = BenchSettings(warmup=2, iters=5)
    assert s.stages_in_timed_calls("cpu", hookable=True)
    assert s.stage_pass_iters("cpu", hookable=True) == 0
    assert not s.stages_in_timed_calls("cuda", hookable=True)
    assert s.stage_pass_iters("cuda", hookable=True) == 5 and s.forward_passes(1, "cuda") == 12
    assert s.stages_in_timed_calls("cuda", hookable=False)  # opaque: the stage is the call
    assert BenchSettings(iters=50, stage_iters=0).forward_passes(1, "cuda") == 60
    assert BenchSettings(iters=50, warmup=0, stage_iters=3).forward_passes(2) == 53
