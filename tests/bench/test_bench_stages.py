"""R-CNN stage hooks: real and fake clocks, and the pass in measure."""

from __future__ import annotations

import time

import pytest
import torch

from pytest_kpmodel.bench.measure import measure
from pytest_kpmodel.bench.settings import BenchSettings
from pytest_kpmodel.bench.stages import STAGES, StageTimer, detection_module, measure_stages


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
    settings = BenchSettings(iters=2, warmup=0, image_size=(72, 96), num_images=1, stage_iters=2)
    r = measure(tiny_model, images=[torch.rand(3, 72, 96)], settings=settings)
    assert r.stages["stage_kind"] == "torchvision-rcnn"
    assert r.to_json()["stages_ms"]["backbone"] > 0
    assert r.detections["per_image"] == [5]  # the tiny model keeps 5 detections per image


def test_rcnn_stages_on_the_cpu_come_from_the_timed_calls(tiny_model):
    calls = []
    handle = tiny_model.module.register_forward_pre_hook(lambda *_: calls.append(1))
    try:
        settings = BenchSettings(iters=3, warmup=1, image_size=(72, 96), num_images=1)
        r = measure(tiny_model, images=[torch.rand(3, 72, 96)], settings=settings)
    finally:
        handle.remove()
    assert len(calls) == 4  # 1 warm-up + 3 timed, no stage pass
    assert r.stages["stage_pass"] == "timed" and r.stages["stage_iters"] == 3
    assert set(r.stages["stages_ms"]) == {*STAGES, "other"}
    assert r.stages["stages_ms"]["backbone"] > 0
    # the stages are parts of the timed calls: their sum is the median call, about
    assert sum(r.stages["stages_ms"].values()) <= 1.5 * r.latency.max
