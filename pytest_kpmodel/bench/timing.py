"""Latency statistics and the honest timing loop behind ``measure.measure``.

Everything here is torch-free at import time and takes its clock and its device
synchronisation as arguments, so the arithmetic and the call order are unit-tested with a fake
clock and a fake device.

Rules the loop keeps (DESIGN.md, "Rules that keep it honest"):

- every timestamp is taken after ``sync()`` (``torch.cuda.synchronize`` on CUDA, a no-op on the
  CPU), so asynchronous GPU work is inside the interval it belongs to;
- warm-up runs before any timed iteration: ``warmup`` calls per distinct input shape the timed
  calls will see (``warmup_schedule``), no more and no fewer, so every shape timed has been seen
  ``warmup`` times (cuDNN/allocator/first-call costs are per shape, not per image);
- ``on_timed_start`` runs once, after warm-up and before the first timed iteration (the caller
  resets the peak-memory counters and starts the RSS sampler there);
- ``on_call`` (a progress bar) runs in ``setup``, outside the interval of every call.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Hashable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

Clock = Callable[[], float]


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Linear-interpolation percentile (numpy's default, ``statistics.quantiles(method=
    'inclusive')``) of already sorted values; ``q`` in [0, 100]."""
    if not sorted_values:
        raise ValueError("percentile of no values")
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"percentile q must be in [0, 100], got {q}")
    pos = (len(sorted_values) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    frac = pos - lo
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * frac


@dataclass(frozen=True)
class LatencyStats:
    """Per-iteration (per-batch) latency in milliseconds and the two FPS figures.

    ``fps_latency`` = ``1000 * batch_size / p50``: images per second at the median latency of one
    call (what one request stream sees). ``fps_throughput`` = images processed / wall time of the
    whole timed loop (mean-based: includes every slow iteration and the loop's own overhead).
    """

    batch_size: int
    iterations: int
    p50: float
    p90: float
    p25: float
    p75: float
    mean: float
    min: float
    max: float
    stdev: float
    wall_s: float
    images: int

    @property
    def iqr(self) -> float:
        return self.p75 - self.p25

    @property
    def per_image_p50(self) -> float:
        return self.p50 / self.batch_size

    @property
    def fps_latency(self) -> float:
        return 1000.0 * self.batch_size / self.p50 if self.p50 > 0 else math.inf

    @property
    def fps_throughput(self) -> float:
        return self.images / self.wall_s if self.wall_s > 0 else math.inf

    def to_json(self) -> dict[str, float]:
        return {
            "p50": self.p50,
            "p90": self.p90,
            "p25": self.p25,
            "p75": self.p75,
            "iqr": self.iqr,
            "mean": self.mean,
            "min": self.min,
            "max": self.max,
            "stdev": self.stdev,
            "per_image_p50": self.per_image_p50,
        }


def summarize(times_s: Sequence[float], batch_size: int, wall_s: float) -> LatencyStats:
    """Per-iteration durations in seconds -> ``LatencyStats`` in milliseconds."""
    if not times_s:
        raise ValueError("no timed iterations")
    ms = sorted(t * 1000.0 for t in times_s)
    n = len(ms)
    mean = sum(ms) / n
    var = sum((x - mean) ** 2 for x in ms) / (n - 1) if n > 1 else 0.0
    return LatencyStats(
        batch_size=batch_size,
        iterations=n,
        p50=percentile(ms, 50),
        p90=percentile(ms, 90),
        p25=percentile(ms, 25),
        p75=percentile(ms, 75),
        mean=mean,
        min=ms[0],
        max=ms[-1],
        stdev=math.sqrt(var),
        wall_s=wall_s,
        images=n * batch_size,
    )


def batch_key(batch: Any) -> Hashable:
    """What makes two calls different work for kernels and the allocator: the shapes and dtypes
    of a batch's images (a batch is a list of tensors; anything else is one key)."""
    items = batch if isinstance(batch, list | tuple) else [batch]
    return tuple(
        (tuple(x.shape), str(getattr(x, "dtype", ""))) if hasattr(x, "shape") else None
        for x in items
    )


def timed_batches(n_batches: int, iters: int) -> list[int]:
    """The batch indices the timed calls use: ``batches[i % n]`` for ``i < iters``."""
    return list(range(min(n_batches, iters)))


def warmup_schedule(keys: Sequence[Hashable], iters: int, warmup: int) -> list[int]:
    """Batch indices of the warm-up calls: ``warmup`` calls for each distinct key (shape) among
    the batches the timed calls will use, taken from that shape's own timed batches, shapes
    interleaved as the timed loop interleaves them. Batches that are never timed are never
    warmed up either."""
    groups: dict[Hashable, list[int]] = {}
    for b in timed_batches(len(keys), iters):
        groups.setdefault(keys[b], []).append(b)
    return [members[j % len(members)] for j in range(warmup) for members in groups.values()]


@dataclass
class TimedLoop:
    """One measurement: a warm-up phase, then ``iters`` timed calls of ``step(batch)``.

    The same object drives our own loop (``run``) and pytest-benchmark's ``pedantic`` (whose
    ``setup`` and ``target`` are ``setup`` and ``target`` below): either way, the warm-up calls
    follow ``warmup_schedule`` (``warmup`` per distinct timed shape: ``warmup_calls`` in all),
    timed call ``i`` uses ``batches[i % len(batches)]``, the timed phase starts on the first
    timed setup (``on_timed_start``), and each timed call is bracketed by ``sync(); clock()``.
    """

    step: Callable[[Any], Any]  # batch -> outputs (one model call)
    batches: Sequence[Any]
    warmup: int  # warm-up calls per distinct timed shape, as asked
    iters: int
    sync: Callable[[], None]
    clock: Clock = time.perf_counter
    on_timed_start: Callable[[], None] | None = None
    on_output: Callable[[Any], None] | None = None  # timed outputs (e.g. detection counts)
    key: Callable[[Any], Hashable] = batch_key  # which batches share a shape
    on_call: Callable[[int], None] | None = None  # progress: one more call (outside the timer)
    times: list[float] = field(default_factory=list)
    warmup_order: list[int] = field(default_factory=list)  # batch index of each warm-up call
    _calls: int = 0  # setups so far (warm-up and timed)
    _start: float | None = None
    _end: float | None = None

    def __post_init__(self) -> None:
        if not self.batches:
            raise ValueError("no batches to time")
        keys = [self.key(b) for b in self.batches]
        self.warmup_order = warmup_schedule(keys, self.iters, self.warmup)

    @property
    def warmup_calls(self) -> int:
        """Warm-up calls made in all: ``warmup`` x the distinct shapes timed."""
        return len(self.warmup_order)

    @property
    def shapes(self) -> int:
        """Distinct input shapes among the timed batches."""
        return len(
            {self.key(self.batches[b]) for b in timed_batches(len(self.batches), self.iters)}
        )

    @property
    def timed_phase(self) -> bool:
        return self.warmup_calls < self._calls <= self.warmup_calls + self.iters

    # pytest-benchmark's pedantic(setup=..., target=...) protocol --------------------------------
    def setup(self):
        """Outside the timer: pick the batch, and open the timed phase on its first round."""
        i = self._calls
        self._calls += 1
        if self.on_call is not None:
            self.on_call(1)
        warm = self.warmup_calls
        if self._calls == warm + 1:
            self.sync()
            if self.on_timed_start is not None:
                self.on_timed_start()
            self.sync()
            self._start = self.clock()
        batch_index = self.warmup_order[i] if i < warm else (i - warm) % len(self.batches)
        return (self.batches[batch_index],), {}

    def target(self, batch) -> None:
        """Inside the timer: one call, synchronised, timed with our clock too."""
        timed = self.timed_phase
        t0 = self.clock()
        out = self.step(batch)
        self.sync()
        t1 = self.clock()
        if timed:
            self.times.append(t1 - t0)
            self._end = t1
            if self.on_output is not None:
                self.on_output(out)

    # our own driver ------------------------------------------------------------------------------
    def run(self) -> None:
        self.sync()  # nothing queued before the first warm-up call either
        for _ in range(self.warmup_calls + self.iters):
            args, _ = self.setup()
            self.target(*args)

    @property
    def wall_s(self) -> float:
        if self._start is None or self._end is None:
            return 0.0
        return self._end - self._start

    def stats(self, batch_size: int) -> LatencyStats:
        if len(self.times) < self.iters:
            raise RuntimeError(
                f"only {len(self.times)} of {self.iters} timed iterations ran; "
                "was the benchmark interrupted?"
            )
        return summarize(self.times[: self.iters], batch_size, self.wall_s)


@contextmanager
def cudnn_benchmark_off():
    """Force ``torch.backends.cudnn.benchmark`` off, restoring the caller's value afterwards.

    For detection models it is a loss: every new input shape is re-autotuned (1.5-1.9 s each on
    an H100) and the steady state measured slower (53.6 vs 38.6 ms). Yields the previous value.
    """
    import torch

    previous = bool(torch.backends.cudnn.benchmark)
    torch.backends.cudnn.benchmark = False
    try:
        yield previous
    finally:
        torch.backends.cudnn.benchmark = previous


def device_sync(device) -> Callable[[], None]:
    """``torch.cuda.synchronize(device)`` for CUDA devices, a no-op otherwise."""
    import torch

    dev = torch.device(device)
    if dev.type == "cuda":

        def sync() -> None:
            torch.cuda.synchronize(dev)

        return sync
    return _no_sync


def _no_sync() -> None:
    return None
