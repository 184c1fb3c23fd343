"""``measure(model, dataset, settings, benchmark=None) -> BenchResult``: latency percentiles, two
FPS figures, per-stage milliseconds, detections per image and peak memory of a
``KeypointModel``, measured honestly (the loop and its statistics are in ``timing``, VRAM/RSS
in ``memory``, the torchvision R-CNN stage hooks in ``stages``).

With pytest-benchmark's ``benchmark`` fixture the timed loop is driven by
``benchmark.pedantic`` (one round = one synchronised model call; pytest-benchmark's stats,
JSON and ``--benchmark-compare`` see the same calls we time) and the result is added to
``benchmark.extra_info``.

What is timed: ``model.predict(batch)`` on images already on the device (float, [0, 1]),
followed by a device synchronisation — host-to-device copies of the input are not included.
The images are ``num_images`` fixed real images from the evaluation set (the first ones, in
dataset order; no more than the timed calls reach), resized with their content to
``image_size`` (H, W) — detections drive the keypoint head's cost, so noise images would time a
different workload; ``image_size=None`` keeps their own sizes. Batches cycle through these
images. Forward passes: ``warmup`` per distinct timed shape, ``iters`` timed, plus a stage pass
only where the stages cannot be timed inside the timed calls (``BenchSettings.stage_iters``);
``BenchSettings.forward_passes`` counts them.
"""

from __future__ import annotations

import math
from contextlib import nullcontext
from typing import Any

from ..progress import step
from .load import LoadSampler
from .machine import device_name
from .memory import TimedRunMemory
from .precision import refuse_emulated_bf16_timing, with_precision
from .result import BenchResult
from .settings import BenchError, BenchSettings
from .stages import TimedStages, detection_module, measure_stages
from .timing import TimedLoop, cudnn_benchmark_off, device_sync


# -- images ---------------------------------------------------------------------------------------
def select_indices(n_available: int, settings: BenchSettings) -> list[int]:
    """The dataset indices benchmarked: the first ``max(num_images, batch_size)``, no more than
    the ``iters * batch_size`` the timed calls reach (cycled when the set is smaller than a
    batch)."""
    if n_available < 1:
        raise BenchError("kp_bench: the evaluation set has no images")
    want = min(max(settings.num_images, settings.batch_size), settings.iters * settings.batch_size)
    return [i % n_available for i in range(min(want, max(n_available, settings.batch_size)))]


def prepare_images(images: list, image_size: tuple[int, int] | None) -> list:
    """uint8 (or float in [0, 1]) CHW tensors -> float CHW in [0, 1], resized with their content
    to ``image_size`` (bilinear, antialiased when shrinking); on the CPU."""
    import torch
    import torch.nn.functional as F

    out = []
    for im in images:
        x = im.float().div(255.0) if im.dtype == torch.uint8 else im.float()
        if image_size is not None and tuple(x.shape[-2:]) != tuple(image_size):
            x = F.interpolate(
                x[None], size=tuple(image_size), mode="bilinear", align_corners=False,
                antialias=True,
            )[0].clamp_(0.0, 1.0)  # fmt: skip
        out.append(x.contiguous())
    return out


def make_batches(images: list, batch_size: int) -> list[list]:
    """Consecutive groups of ``batch_size`` images, wrapping around to fill the last one."""
    n = len(images)
    count = max(1, math.ceil(n / batch_size))
    return [[images[(b * batch_size + j) % n] for j in range(batch_size)] for b in range(count)]


def _timed_images(dataset, images: list | None, settings: BenchSettings, device) -> list:
    """The distinct images the loop cycles through, prepared and on ``device``."""
    if images is None:
        if dataset is None:
            raise BenchError("kp_bench: pass an evaluation set or images to benchmark on")
        from ..data import load_images

        images = load_images(dataset, select_indices(len(dataset), settings))
    else:
        images = [images[i] for i in select_indices(len(images), settings)]
    return [_to_device(x, device) for x in prepare_images(images, settings.image_size)]


def _to_device(t, device):
    return t.to(device)  # a seam: the CUDA call-order tests keep the images on the CPU


class _DetectionCounts:
    """Detections per distinct image over the timed calls (``on_output`` of the loop)."""

    def __init__(self, n_images: int, n_batches: int, batch_size: int) -> None:
        self.counts: list[list[int]] = [[] for _ in range(n_images)]
        self.n_batches = n_batches
        self.batch_size = batch_size
        self.batch = 0

    def __call__(self, preds) -> None:
        b = self.batch % self.n_batches
        self.batch += 1
        for j, p in enumerate(preds):
            self.counts[(b * self.batch_size + j) % len(self.counts)].append(len(p))

    def to_json(self) -> dict[str, Any]:
        flat = [c for per_image in self.counts for c in per_image]
        return {
            "mean": sum(flat) / len(flat) if flat else 0.0,
            "min": min(flat) if flat else 0,
            "max": max(flat) if flat else 0,
            "per_image": [per_image[-1] if per_image else None for per_image in self.counts],
        }


# -- measurement ------------------------------------------------------------------------------------
def measure(
    model,
    dataset=None,
    settings: BenchSettings | None = None,
    *,
    images: list | None = None,
    benchmark: Any = None,
    clock=None,
    progress: Any = None,
    time_emulated_bf16: bool = False,
) -> BenchResult:
    """Benchmark ``model`` (a ``KeypointModel``) on fixed real images of ``dataset`` (or on
    ``images``: uint8/float CHW tensors) under ``settings``.

    Steps: resize the images, move them to the device; force ``cudnn.benchmark`` off (restored
    afterwards); warm up ``warmup`` calls per distinct timed shape; sync, empty the CUDA cache
    and reset the peak-memory counters, start the RSS sampler; time ``iters`` synchronised calls
    (through ``benchmark.pedantic`` when a pytest-benchmark fixture is given and enabled), with
    the stage hooks inside them where they need no synchronisation; read memory; then, only for
    R-CNN models on CUDA or when ``stage_iters`` asks, a separate stage pass. Raises
    ``BenchUnavailable`` for what cannot run here. ``progress``: a ``progress.Step`` to count
    the calls in (``kp_parity``'s variant); without it the benchmark shows its own. bf16 on a CPU
    that emulates it is refused (``BenchUnavailable``) unless ``time_emulated_bf16``.
    """
    import time

    import torch

    settings = settings or BenchSettings()
    settings.validate()
    clock = clock or time.perf_counter
    vmodel = with_precision(model, settings.precision)
    device = torch.device(getattr(vmodel, "device", "cpu"))
    if not time_emulated_bf16:
        refuse_emulated_bf16_timing(settings.precision, str(device), "kp_bench(precision='bf16')")
    prepared = _timed_images(dataset, images, settings, device)
    batches = make_batches(prepared, settings.batch_size)
    sync = device_sync(device)
    counts = _DetectionCounts(len(prepared), len(batches), settings.batch_size)
    memory = TimedRunMemory(device, settings.rss_interval_s)
    load = LoadSampler(torch.get_num_threads(), gpu=device.type == "cuda")
    hookable = detection_module(vmodel) is not None
    in_timed = settings.stages_in_timed_calls(device.type, hookable)
    timed_stages = TimedStages(vmodel, sync, clock) if in_timed else None

    def timed_start() -> None:
        memory.start()
        load.start()
        if timed_stages is not None:
            timed_stages.start()

    def timed_output(preds) -> None:
        counts(preds)
        if timed_stages is not None:
            timed_stages.record(loop.times[-1] * 1000.0)

    loop = TimedLoop(
        step=vmodel.predict,
        batches=batches,
        warmup=settings.warmup,
        iters=settings.iters,
        sync=sync,
        clock=clock,
        on_timed_start=timed_start,
        on_output=timed_output,
    )
    stage_iters = settings.stage_pass_iters(device.type, hookable)
    passes = loop.warmup_calls + loop.iters + (0 if timed_stages is not None else stage_iters)
    own = progress is None
    if own:
        progress = step(_describe(vmodel, device, loop, stage_iters if timed_stages is None else 0),
                        passes, unit="call")  # fmt: skip
    else:
        progress.expect(passes)
    loop.on_call = progress
    use_pb = benchmark is not None and not getattr(benchmark, "disabled", False)
    with cudnn_benchmark_off() as previous, progress if own else nullcontext():
        try:
            with timed_stages or nullcontext():
                if use_pb:
                    _pedantic(benchmark, loop)
                else:
                    loop.run()
        finally:
            memory.stop()
            load.stop()
        memory_json = memory.to_json()
        stats = loop.stats(settings.batch_size)
        if timed_stages is not None:
            stages = timed_stages.to_json()
        elif stage_iters > 0:
            stages = measure_stages(
                vmodel, batches, stage_iters, sync, clock, vmodel.predict, on_call=progress
            )
        else:
            stages = {}

    result = BenchResult(
        settings=settings,
        device=str(device),
        device_name=device_name(device),
        latency=stats,
        warmup=loop.warmup_calls,
        images=len(prepared),
        image_sizes=[list(x.shape[-2:]) for x in prepared],
        cpu_threads=torch.get_num_threads(),
        interop_threads=torch.get_num_interop_threads(),
        cudnn_benchmark_restored_to=previous,
        detections=counts.to_json(),
        stages=stages,
        memory=memory_json,
        times_ms=[t * 1000.0 for t in loop.times[: settings.iters]],
        driver="pytest-benchmark" if use_pb else "kpmodel",
        load=load.reading.to_json() if load.reading is not None else {},
    )
    if benchmark is not None:
        attach_extra_info(benchmark, result)
    return result


def _describe(model, device, loop: TimedLoop, stage_pass: int) -> str:
    """The benchmark's line: 'benchmarking kp-tiny-mod on cpu: 2 warm-up + 5 timed calls'."""
    name = getattr(model, "name", "") or type(model).__name__
    extra = f" + {stage_pass} stage-timing calls" if stage_pass else ""
    return (f"benchmarking {name} on {device}: {loop.warmup_calls} warm-up + {loop.iters} timed "
            f"calls{extra}")  # fmt: skip


def _pedantic(benchmark, loop: TimedLoop) -> None:
    try:
        benchmark.pedantic(
            loop.target, setup=loop.setup, rounds=loop.iters, warmup_rounds=loop.warmup_calls,
            iterations=1,
        )  # fmt: skip
    except Exception as exc:
        if type(exc).__name__ == "FixtureAlreadyUsed":
            raise BenchError(
                "pytest-benchmark's benchmark fixture stores one run per test and was already "
                "used in this test; call kp_bench(benchmark=...) once per test (parametrize "
                "the settings for several runs)"
            ) from None
        raise


def attach_extra_info(benchmark, result: BenchResult) -> None:
    """Add the result to pytest-benchmark's ``benchmark.extra_info`` (saved in its JSON)."""
    benchmark.extra_info.update(result.extra_info())
