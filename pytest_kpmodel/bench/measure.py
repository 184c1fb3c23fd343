"""Speed and memory of a ``KeypointModel``: latency percentiles, two FPS figures, per-stage
milliseconds, detections per image and peak memory, measured honestly (see the helpers:
``bench_timing`` for the loop and statistics, ``bench_memory`` for VRAM/RSS, ``bench_stages``
for the torchvision R-CNN stage hooks).

Entry points (no pytest import; the plugin wires them to ``kp_bench``, ``kp_thresholds`` and
pytest-benchmark):

- ``BenchSettings.from_kwargs(**marker_or_call_kwargs)`` -> validated settings.
- ``measure(model, dataset, settings, benchmark=None) -> BenchResult``. With pytest-benchmark's
  ``benchmark`` fixture the timed loop is driven by ``benchmark.pedantic`` (one round = one
  synchronised model call; pytest-benchmark's stats, JSON and ``--benchmark-compare`` see the
  same calls we time) and the result is added to ``benchmark.extra_info``.
- ``speed_gates(result, thresholds) -> list[Gate]``, ``missing_gates`` (reasons a requested gate
  cannot be evaluated here), ``speed_check`` (both as one ``CheckResult``).
- ``machine_info_extra()`` for ``pytest_benchmark_update_machine_info``; ``xdist_reason(config)``.

What is timed: ``model.predict(batch)`` on images already on the device (float, [0, 1]),
followed by a device synchronisation — host-to-device copies of the input are not included.
The images are ``num_images`` fixed real images from the evaluation set (the first ones, in
dataset order), resized with their content to ``image_size`` (H, W) — detections drive the
keypoint head's cost, so noise images would time a different workload; ``image_size=None``
keeps their own sizes. Batches cycle through these images; warm-up covers every batch.
"""

from __future__ import annotations

import math
import os
import platform
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from .bench_memory import MIB, CudaMemory, RssSampler
from .bench_stages import measure_stages
from .bench_timing import LatencyStats, TimedLoop, cudnn_benchmark_off, device_sync
from .errors import KpModelError
from .findings import CheckResult, Gate

PRECISIONS = ("fp32", "fp16", "bf16")
SPEED_GATES = ("fps", "latency_p50_ms", "latency_p90_ms", "vram_mib")
XDIST_REASON = (
    "speed tests do not run under pytest-xdist: parallel workers share the CPU/GPU and distort "
    "every timing; run them with -p no:xdist or -n 0"
)


class BenchError(KpModelError):
    """Bad benchmark settings or a benchmark that could not be stored."""


class BenchUnavailable(KpModelError):
    """The benchmark cannot run here (e.g. fp16 without CUDA); the test skips with this reason."""


# -- settings -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class BenchSettings:
    batch_size: int = 1
    precision: str = "fp32"
    image_size: tuple[int, int] | None = (800, 1333)  # (H, W); None: the images' own sizes
    warmup: int = 10  # raised to the number of distinct batches when smaller
    iters: int = 100
    num_images: int = 8  # distinct real images cycled through (at least batch_size)
    stage_iters: int | None = None  # stage-timing pass; None: min(iters, 20); 0: off
    rss_interval_s: float = 0.002

    @classmethod
    def from_kwargs(cls, **kwargs: Any) -> BenchSettings:
        """Validated settings from ``kp_bench(...)`` marker or call kwargs (later wins: merge the
        marker's kwargs with the call's before calling)."""
        known = {f for f in cls.__dataclass_fields__}
        unknown = sorted(set(kwargs) - known)
        if unknown:
            raise BenchError(
                f"kp_bench: unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
            )
        s = cls(**kwargs)
        s.validate()
        if s.image_size is not None:
            s = replace(s, image_size=(int(s.image_size[0]), int(s.image_size[1])))
        return s

    def validate(self) -> None:
        def positive_int(name: str, value: Any, minimum: int = 1) -> None:
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise BenchError(f"kp_bench: {name} must be an integer >= {minimum}, got {value!r}")

        positive_int("batch_size", self.batch_size)
        positive_int("warmup", self.warmup, 0)
        positive_int("iters", self.iters)
        positive_int("num_images", self.num_images)
        if self.stage_iters is not None:
            positive_int("stage_iters", self.stage_iters, 0)
        if self.precision not in PRECISIONS:
            raise BenchError(
                f"kp_bench: precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}"
            )
        size = self.image_size
        if size is not None and (
            not isinstance(size, tuple | list)
            or len(size) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in size)
        ):
            raise BenchError(
                f"kp_bench: image_size must be (height, width) in pixels or None, got {size!r}"
            )
        if not (isinstance(self.rss_interval_s, int | float) and self.rss_interval_s > 0):
            raise BenchError(f"kp_bench: rss_interval_s must be > 0, got {self.rss_interval_s!r}")

    @property
    def effective_stage_iters(self) -> int:
        return min(self.iters, 20) if self.stage_iters is None else self.stage_iters

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["image_size"] = list(self.image_size) if self.image_size is not None else None
        return d


# -- result ---------------------------------------------------------------------------------------
@dataclass
class BenchResult:
    settings: BenchSettings
    device: str
    device_name: str
    latency: LatencyStats
    warmup: int  # warm-up calls actually made (>= settings.warmup, >= distinct batches)
    images: int  # distinct images cycled through
    image_sizes: list[list[int]]  # (H, W) of each distinct image as timed
    cpu_threads: int
    interop_threads: int
    cudnn_benchmark_restored_to: bool
    detections: dict[str, Any] = field(default_factory=dict)
    stages: dict[str, Any] = field(default_factory=dict)
    memory: dict[str, Any] = field(default_factory=dict)
    times_ms: list[float] = field(default_factory=list)
    driver: str = "kpmodel"  # "kpmodel" (own loop) or "pytest-benchmark" (pedantic rounds)

    @property
    def fps(self) -> float:
        """The figure ``fps`` gates and the report use: throughput (images / timed wall time)."""
        return self.latency.fps_throughput

    @property
    def peak_vram_mib(self) -> float | None:
        return self.memory.get("peak_vram_mib")

    def to_json(self) -> dict[str, Any]:
        """The ``kp-report.json`` ``bench`` entry (JSON-serialisable)."""
        lat = self.latency
        return {
            "batch_size": self.settings.batch_size,
            "precision": self.settings.precision,
            "image_size": self.settings.to_json()["image_size"],
            "device": self.device,
            "device_name": self.device_name,
            "fps": _finite(self.fps),
            "fps_throughput": _finite(lat.fps_throughput),
            "fps_latency": _finite(lat.fps_latency),
            "latency_ms": lat.to_json(),
            "peak_vram_mib": self.peak_vram_mib,
            "memory": dict(self.memory),
            "stages_ms": dict(self.stages.get("stages_ms", {})),
            "stage_total_ms": self.stages.get("stage_total_ms"),
            "stage_iters": self.stages.get("stage_iters", 0),
            "stage_kind": self.stages.get("stage_kind"),
            "detections_per_image": dict(self.detections),
            "warmup": self.warmup,
            "iters": lat.iterations,
            "images": self.images,
            "image_sizes": self.image_sizes,
            "wall_s": lat.wall_s,
            "cpu_threads": self.cpu_threads,
            "interop_threads": self.interop_threads,
            "cudnn_benchmark": False,
            "driver": self.driver,
            "settings": self.settings.to_json(),
        }

    def describe(self) -> str:
        """One line for the terminal, e.g. 'fp32 batch 1 800x1333 on cuda:0: p50 38.6 ms,
        p90 41.0 ms, 25.1 FPS (throughput), 25.9 FPS at p50, peak VRAM 1210 MiB'."""
        s, lat = self.settings, self.latency
        size = "x".join(map(str, s.image_size)) if s.image_size else "own size"
        mem = (
            f"peak VRAM {self.peak_vram_mib:.0f} MiB"
            if self.peak_vram_mib is not None
            else f"RSS +{self.memory.get('rss_peak_increase_mib', float('nan')):.0f} MiB"
        )
        return (
            f"{s.precision} batch {s.batch_size} {size} on {self.device}: p50 {lat.p50:.1f} ms, "
            f"p90 {lat.p90:.1f} ms, {lat.fps_throughput:.1f} FPS (throughput), "
            f"{lat.fps_latency:.1f} FPS at p50, {mem}"
        )

    def extra_info(self) -> dict[str, Any]:
        """What goes into pytest-benchmark's ``benchmark.extra_info``."""
        d = self.to_json()
        d.pop("settings")
        d.pop("image_sizes")
        return d


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


# -- images ---------------------------------------------------------------------------------------
def select_indices(n_available: int, settings: BenchSettings) -> list[int]:
    """The dataset indices benchmarked: the first ``max(num_images, batch_size)`` (cycled when
    the set is smaller than a batch)."""
    if n_available < 1:
        raise BenchError("kp_bench: the evaluation set has no images")
    want = max(settings.num_images, settings.batch_size)
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


def _to_device(t, device):
    return t.to(device)


# -- precision --------------------------------------------------------------------------------------
def with_precision(model, precision: str):
    """``model`` running at ``precision``: the same object when it already does, a view sharing
    the module with another autocast dtype for torch models; ``BenchUnavailable`` otherwise."""
    current = getattr(model, "precision", "fp32")
    if precision == current:
        return model
    from .security.guarded_model import GuardedModel

    if isinstance(model, GuardedModel):  # the variant runs under the same runtime guard
        return GuardedModel(with_precision(model.inner, precision), model.guard)
    from .adapters.options import LoadOptions
    from .adapters.torch_module import TorchDetectionModel
    from .errors import AdapterError

    own = getattr(model, "with_precision", None)  # a family adapter that switches itself
    if own is not None and not isinstance(model, TorchDetectionModel):
        try:
            return own(precision)
        except AdapterError as exc:
            raise BenchUnavailable(str(exc)) from None
    if not isinstance(model, TorchDetectionModel):
        raise BenchUnavailable(
            f"{type(model).__name__} runs at the precision it was built for ({current}); "
            f"{precision} cannot be benchmarked for it"
        )
    try:
        return TorchDetectionModel(
            model.module, LoadOptions(device=str(model.device), precision=precision),
            model.num_keypoints, model.name,
        )  # fmt: skip
    except AdapterError as exc:
        raise BenchUnavailable(str(exc)) from None


# -- measurement ------------------------------------------------------------------------------------
def measure(
    model,
    dataset=None,
    settings: BenchSettings | None = None,
    *,
    images: list | None = None,
    benchmark: Any = None,
    clock=None,
) -> BenchResult:
    """Benchmark ``model`` (a ``KeypointModel``) on fixed real images of ``dataset`` (or on
    ``images``: uint8/float CHW tensors) under ``settings``.

    Steps: resize the images, move them to the device; force ``cudnn.benchmark`` off (restored
    afterwards); warm up on every batch; sync, empty the CUDA cache and reset the peak-memory
    counters, start the RSS sampler; time ``iters`` synchronised calls (through
    ``benchmark.pedantic`` when a pytest-benchmark fixture is given and enabled); read memory;
    then a separate stage-timing pass. Raises ``BenchUnavailable`` for what cannot run here.
    """
    import time

    import torch

    settings = settings or BenchSettings()
    settings.validate()
    clock = clock or time.perf_counter
    vmodel = with_precision(model, settings.precision)
    device = torch.device(getattr(vmodel, "device", "cpu"))

    if images is None:
        if dataset is None:
            raise BenchError("kp_bench: pass an evaluation set or images to benchmark on")
        from .data import load_images

        images = load_images(dataset, select_indices(len(dataset), settings))
    else:
        images = [images[i] for i in select_indices(len(images), settings)]
    prepared = [_to_device(x, device) for x in prepare_images(images, settings.image_size)]
    batches = make_batches(prepared, settings.batch_size)
    sync = device_sync(device)

    counts: list[list[int]] = [[] for _ in prepared]
    position = {"batch": 0}

    def on_output(preds) -> None:
        b = position["batch"] % len(batches)
        position["batch"] += 1
        for j, p in enumerate(preds):
            counts[(b * settings.batch_size + j) % len(prepared)].append(len(p))

    cuda_mem = CudaMemory(device) if device.type == "cuda" else None
    rss = RssSampler(settings.rss_interval_s)

    def on_timed_start() -> None:
        import gc

        gc.collect()
        if cuda_mem is not None:
            cuda_mem.reset()
        rss.start()

    loop = TimedLoop(
        step=vmodel.predict,
        batches=batches,
        warmup=settings.warmup,
        iters=settings.iters,
        sync=sync,
        clock=clock,
        on_timed_start=on_timed_start,
        on_output=on_output,
    )
    use_pb = benchmark is not None and not getattr(benchmark, "disabled", False)
    with cudnn_benchmark_off() as previous:
        try:
            if use_pb:
                _pedantic(benchmark, loop)
            else:
                loop.run()
        finally:
            rss.stop()
        memory: dict[str, Any] = {}
        if cuda_mem is not None:
            memory.update(cuda_mem.read())
        else:
            memory["peak_vram_mib"] = None
            memory["vram_skipped"] = f"device {device} has no VRAM"
        memory.update(rss.to_json())
        stats = loop.stats(settings.batch_size)
        stage_iters = settings.effective_stage_iters
        stages = (
            measure_stages(vmodel, batches, stage_iters, sync, clock, vmodel.predict)
            if stage_iters > 0
            else {}
        )

    flat = [c for per_image in counts for c in per_image]
    detections = {
        "mean": sum(flat) / len(flat) if flat else 0.0,
        "min": min(flat) if flat else 0,
        "max": max(flat) if flat else 0,
        "per_image": [per_image[-1] if per_image else None for per_image in counts],
    }
    result = BenchResult(
        settings=settings,
        device=str(device),
        device_name=device_name(device),
        latency=stats,
        warmup=loop.warmup,
        images=len(prepared),
        image_sizes=[list(x.shape[-2:]) for x in prepared],
        cpu_threads=torch.get_num_threads(),
        interop_threads=torch.get_num_interop_threads(),
        cudnn_benchmark_restored_to=previous,
        detections=detections,
        stages=stages,
        memory=memory,
        times_ms=[t * 1000.0 for t in loop.times[: settings.iters]],
        driver="pytest-benchmark" if use_pb else "kpmodel",
    )
    if benchmark is not None:
        attach_extra_info(benchmark, result)
    return result


def _pedantic(benchmark, loop: TimedLoop) -> None:
    try:
        benchmark.pedantic(
            loop.target, setup=loop.setup, rounds=loop.iters, warmup_rounds=loop.warmup,
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


def device_name(device) -> str:
    import torch

    dev = torch.device(device)
    if dev.type == "cuda":
        try:
            return torch.cuda.get_device_name(dev)
        except Exception:  # noqa: BLE001 - a name is nice to have, never a reason to fail
            return "cuda"
    return _cpu_name()


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "cpu"


# -- gates ----------------------------------------------------------------------------------------
def _label(result: BenchResult) -> str:
    s = result.settings
    return f"batch {s.batch_size}, {s.precision}, {result.device}"


def speed_gates(result: BenchResult, thresholds: dict[str, Any]) -> list[Gate]:
    """Gates for the speed keys of ``kp_thresholds`` (others are ignored): ``fps`` >= (the
    throughput FPS), ``latency_p50_ms`` / ``latency_p90_ms`` <=, ``vram_mib`` <= (the allocator
    peak during the timed runs). Keys that cannot be evaluated here are left out; see
    ``missing_gates``."""
    gates = []
    label = _label(result)
    lat = result.latency
    if thresholds.get("fps") is not None:
        gates.append(Gate("speed", f"FPS (throughput; {label})", result.fps,
                          float(thresholds["fps"]), ">=", unit=" FPS"))  # fmt: skip
    if thresholds.get("latency_p50_ms") is not None:
        gates.append(Gate("speed", f"latency p50 ({label})", lat.p50,
                          float(thresholds["latency_p50_ms"]), "<=", unit=" ms"))  # fmt: skip
    if thresholds.get("latency_p90_ms") is not None:
        gates.append(Gate("speed", f"latency p90 ({label})", lat.p90,
                          float(thresholds["latency_p90_ms"]), "<=", unit=" ms"))  # fmt: skip
    if thresholds.get("vram_mib") is not None and result.peak_vram_mib is not None:
        gates.append(Gate("speed", f"peak VRAM ({label})", float(result.peak_vram_mib),
                          float(thresholds["vram_mib"]), "<=", unit=" MiB"))  # fmt: skip
    return gates


def missing_gates(result: BenchResult, thresholds: dict[str, Any]) -> list[str]:
    """Why requested speed gates cannot be evaluated here (one sentence each)."""
    reasons = []
    if thresholds.get("vram_mib") is not None and result.peak_vram_mib is None:
        reasons.append(
            f"vram_mib={thresholds['vram_mib']} cannot be checked on {result.device}: "
            "no CUDA device (run with --kp-device=cuda on a GPU)"
        )
    return reasons


def speed_check(result: BenchResult, thresholds: dict[str, Any]) -> CheckResult:
    """Fails with every missed gate at once; otherwise skips when a requested gate could not be
    evaluated (never passes silently); otherwise passes."""
    check = CheckResult("kp_thresholds", gates=speed_gates(result, thresholds))
    if not check.failures:
        missing = missing_gates(result, thresholds)
        if missing:
            check.skipped = "; ".join(missing)
    return check


# -- pytest-benchmark and xdist helpers -------------------------------------------------------------
def machine_info_extra() -> dict[str, Any]:
    """For ``pytest_benchmark_update_machine_info(config, machine_info)``:
    ``machine_info.update(machine_info_extra())`` — so ``--benchmark-compare`` warns when runs
    come from different GPUs, drivers or torch builds."""
    import torch

    info: dict[str, Any] = {
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": None,
        "gpu": None,
        "gpu_count": 0,
        "gpu_driver": None,
        "cpu_threads": torch.get_num_threads(),
    }
    try:  # the distribution's version: importing torchvision costs seconds
        from importlib.metadata import PackageNotFoundError, version

        info["torchvision"] = version("torchvision")
    except PackageNotFoundError:
        info["torchvision"] = None
    if torch.cuda.is_available():
        info["gpu_count"] = torch.cuda.device_count()
        info["gpu"] = torch.cuda.get_device_name(0)
        props = torch.cuda.get_device_properties(0)
        info["gpu_capability"] = f"{props.major}.{props.minor}"
        info["gpu_memory_mib"] = props.total_memory // MIB
        try:
            info["cudnn"] = torch.backends.cudnn.version()
        except Exception:  # noqa: BLE001
            info["cudnn"] = None
        info["gpu_driver"] = _driver_version()
    return info


def _driver_version() -> str | None:
    try:
        import pynvml  # type: ignore[import-not-found]

        pynvml.nvmlInit()
        try:
            v = pynvml.nvmlSystemGetDriverVersion()
            return v.decode() if isinstance(v, bytes) else str(v)
        finally:
            pynvml.nvmlShutdown()
    except Exception:  # noqa: BLE001 - pynvml absent or NVML unusable
        pass
    try:
        with open("/proc/driver/nvidia/version", encoding="utf-8") as f:
            first = f.readline()
        for token in first.split():
            if token[:1].isdigit() and "." in token:
                return token
    except OSError:
        pass
    return None


def xdist_reason(config: Any = None) -> str | None:
    """The skip reason for speed tests when running under pytest-xdist, else None.

    ``config`` is pytest's config (or anything with ``workerinput`` / ``option.numprocesses``
    / ``option.dist``); the ``PYTEST_XDIST_WORKER`` environment variable is checked as well.
    """
    if os.environ.get("PYTEST_XDIST_WORKER"):
        return XDIST_REASON
    if config is None:
        return None
    if getattr(config, "workerinput", None) is not None:
        return XDIST_REASON
    option = getattr(config, "option", None)
    n = getattr(option, "numprocesses", None)
    dist = getattr(option, "dist", "no")
    if (n not in (None, 0, "0")) or (dist not in (None, "no")):
        return XDIST_REASON
    return None
