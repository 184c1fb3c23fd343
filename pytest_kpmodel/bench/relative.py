"""``kp_no_regression(fps=...)``: the candidate's speed against the baseline's, measured in
alternating rounds on the same images (candidate, base, candidate, base...), gated on the
ratio of their throughputs.

Two benchmarks run one after the other measure the machine twice: beside another CPU-heavy job
the example model fell from 36 to 2 FPS, and whichever model ran during the neighbour's burst
lost. Alternating short rounds puts both models under the same drift, so it cancels in each
round's ratio; the gate takes the median ratio and shows the spread (lowest and highest round),
which says how far the machine moved. The machine's load over the rounds is recorded too
(``load.LoadSampler``).

Each model is warmed up first (``warmup`` calls per distinct timed shape, as ``kp_bench``), then
``ROUNDS`` rounds each time ``ceil(iters / ROUNDS)`` synchronised calls of each model, cycling
through the same prepared images (``kp_bench(...)``'s ``num_images``, ``image_size``,
``batch_size`` and ``precision``).
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from typing import Any

from .load import LoadReading, LoadSampler
from .settings import BenchSettings

ROUNDS = 5


@dataclass
class RelativeResult:
    settings: BenchSettings
    device: str
    calls_per_round: int
    candidate_fps: list[float]
    base_fps: list[float]
    load: LoadReading | None = None
    names: tuple[str, str] = ("candidate", "baseline")
    warmup: dict[str, int] = field(default_factory=dict)

    @property
    def ratios(self) -> list[float]:
        return [
            c / b if b > 0 else math.inf
            for c, b in zip(self.candidate_fps, self.base_fps, strict=True)
        ]

    @property
    def ratio(self) -> float:
        """The median of the rounds' candidate/base throughput ratios: what the gate judges."""
        return statistics.median(self.ratios)

    @property
    def spread(self) -> tuple[float, float]:
        return min(self.ratios), max(self.ratios)

    def describe(self) -> str:
        """E.g. 'FPS ratio 0.97 over 5 alternating rounds (spread 0.91-1.03): 21.0 vs 21.6 FPS'."""
        lo, hi = self.spread
        c, b = statistics.median(self.candidate_fps), statistics.median(self.base_fps)
        return (
            f"FPS ratio {self.ratio:.2f} over {len(self.ratios)} alternating rounds "
            f"(spread {lo:.2f}-{hi:.2f}): {c:.1f} vs {b:.1f} FPS"
        )

    def to_json(self) -> dict[str, Any]:
        lo, hi = self.spread
        return {
            "ratio": self.ratio,
            "ratio_min": lo,
            "ratio_max": hi,
            "ratios": self.ratios,
            "rounds": len(self.ratios),
            "calls_per_round": self.calls_per_round,
            "candidate_fps": self.candidate_fps,
            "baseline_fps": self.base_fps,
            "models": list(self.names),
            "device": self.device,
            "warmup": dict(self.warmup),
            "settings": self.settings.to_json(),
            "load": self.load.to_json() if self.load is not None else None,
        }


class _Timed:
    """One model's part: its prepared batches on its device, warmed up, timed a round at a time."""

    def __init__(self, model, dataset, settings: BenchSettings, images: list | None) -> None:
        import torch

        from .measure import _timed_images, make_batches
        from .precision import refuse_emulated_bf16_timing, with_precision
        from .timing import device_sync

        self.model = with_precision(model, settings.precision)
        self.device = torch.device(getattr(self.model, "device", "cpu"))
        refuse_emulated_bf16_timing(
            settings.precision, str(self.device), "kp_bench_vs_baseline(precision='bf16')"
        )
        self.batches = make_batches(
            _timed_images(dataset, images, settings, self.device), settings.batch_size
        )
        self.sync = device_sync(self.device)
        self.batch_size = settings.batch_size
        self.next = 0
        shapes = {tuple(tuple(x.shape) for x in b) for b in self.batches}
        self.warmup_calls = settings.warmup * len(shapes)

    def calls(self, n: int, clock, on_call=None) -> float:
        """``n`` synchronised calls; the seconds they took."""
        self.sync()
        t0 = clock()
        for _ in range(n):
            self.model.predict(self.batches[self.next % len(self.batches)])
            self.next += 1
            self.sync()
            if on_call is not None:
                on_call(1)
        return clock() - t0


def alternating(
    candidate,
    base,
    dataset=None,
    settings: BenchSettings | None = None,
    *,
    images: list | None = None,
    rounds: int = ROUNDS,
    clock=None,
    names: tuple[str, str] = ("candidate", "baseline"),
) -> RelativeResult:
    """Time ``candidate`` and ``base`` (``KeypointModel``\\ s) in ``rounds`` alternating rounds
    on the same images of ``dataset`` (or ``images``); see the module docstring."""
    import time

    from ..progress import step

    settings = settings or BenchSettings()
    settings.validate()
    clock = clock or time.perf_counter
    if rounds < 2:
        raise ValueError("alternating rounds need at least 2 rounds")
    parts = [_Timed(m, dataset, settings, images) for m in (candidate, base)]
    per_round = max(1, math.ceil(settings.iters / rounds))
    total = sum(p.warmup_calls for p in parts) + 2 * rounds * per_round
    fps: tuple[list[float], list[float]] = ([], [])
    sampler = LoadSampler(_torch_threads(), gpu=parts[0].device.type == "cuda")
    line = (f"timing {names[0]} against {names[1]} on {parts[0].device}: {rounds} alternating "
            f"rounds of {per_round} calls each")  # fmt: skip
    from .timing import cudnn_benchmark_off

    with cudnn_benchmark_off(), step(line, total, unit="call") as bar:
        for p in parts:
            p.calls(p.warmup_calls, clock, bar)
        sampler.start()
        try:
            for _ in range(rounds):
                for p, out in zip(parts, fps, strict=True):
                    seconds = p.calls(per_round, clock, bar)
                    out.append(per_round * p.batch_size / seconds if seconds > 0 else math.inf)
        finally:
            sampler.stop()
    return RelativeResult(
        settings=settings,
        device=str(parts[0].device),
        calls_per_round=per_round,
        candidate_fps=fps[0],
        base_fps=fps[1],
        load=sampler.reading,
        names=names,
        warmup={names[0]: parts[0].warmup_calls, names[1]: parts[1].warmup_calls},
    )


def _torch_threads() -> int | None:
    import torch

    return torch.get_num_threads()


def measure_relative(session, settings: dict[str, Any]) -> RelativeResult:
    """For ``KpSession.bench_vs_baseline``: the run's model against its baseline's, on the
    run's images (rank 0 measures under torchrun); the report's ``bench_vs_baseline`` list."""
    chosen = BenchSettings.from_kwargs(**settings)
    base = session.baseline
    text = repr(sorted(chosen.to_json().items()))
    result = session.dist.on_main(
        f"bench-vs-baseline {text}",
        lambda: alternating(
            session.model, base.model, session.dataset, chosen,
            names=(session.card.model.name, base.card.model.name),
        ),
    )  # fmt: skip
    session.sections.setdefault("bench_vs_baseline", []).append(result.to_json())
    return result
