"""One benchmark's outcome: the ``kp-report.json`` ``bench`` entry, the terminal line and what
goes into pytest-benchmark's ``extra_info``."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from .settings import BenchSettings
from .timing import LatencyStats


@dataclass
class BenchResult:
    settings: BenchSettings
    device: str
    device_name: str
    latency: LatencyStats
    warmup: int  # warm-up calls made: settings.warmup x the distinct shapes timed
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
    load: dict[str, Any] = field(default_factory=dict)  # the machine's load while timing (load.py)

    @property
    def busy(self) -> str | None:
        """'machine busy: load 6.1 on 2 cores during timing' when the timed calls shared the
        machine enough to distort them (``load.LoadReading.busy``)."""
        return self.load.get("busy")

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
            "stage_pass": self.stages.get("stage_pass"),
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
            "load": dict(self.load),
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
