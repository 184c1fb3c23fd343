"""kp_no_regression(fps=...)'s timing: candidate and base in alternating rounds, the median
ratio and its spread (bench/relative.py)."""

from __future__ import annotations

import pytest
from bench_fakes import FakeClock, FakeModel, images

from pytest_kpmodel.bench.relative import alternating
from pytest_kpmodel.bench.settings import BenchSettings

SETTINGS = BenchSettings(image_size=None, warmup=1, iters=10, num_images=2)


class DriftingModel(FakeModel):
    """Each call costs ``ms`` times the machine's current slowness (shared by both models)."""

    def __init__(self, clock, ms, machine, order):
        super().__init__(clock=clock, durations_ms=(0.0,))
        self.ms, self.machine, self.order = ms, machine, order

    def predict(self, batch):
        self.clock.now += self.ms * self.machine["slowness"] / 1000.0
        self.machine["calls"] += 1
        if self.machine["calls"] == self.machine["jump_at"]:
            self.machine["slowness"] = 8.0  # a neighbour starts burning the CPU
        self.order.append(self.ms)
        return super().predict(batch)


def test_alternating_rounds_cancel_a_machine_that_slows_down():
    clock, log = FakeClock(), []
    # Warm-up (1 + 1 calls), then the machine becomes 8x slower a third of the way in.
    machine = {"slowness": 1.0, "calls": 0, "jump_at": 2 + 7}
    cand = DriftingModel(clock, 20.0, machine, log)  # twice as slow as the base
    base = DriftingModel(clock, 10.0, machine, log)
    result = alternating(cand, base, images=images((8, 8), (8, 8)), settings=SETTINGS,
                         rounds=5, clock=clock)  # fmt: skip
    assert result.calls_per_round == 2 and len(result.ratios) == 5
    assert result.ratio == pytest.approx(0.5)  # the slowdown hit both alike
    assert result.spread[1] > 1.0  # the round the jump fell in shows it
    # Candidate, base, candidate, base...: rounds of 2 calls each after the warm-up.
    assert log[2:] == [20.0, 20.0, 10.0, 10.0] * 5
    text = result.describe()
    assert text.startswith("FPS ratio 0.50 over 5 alternating rounds (spread 0.") and "FPS" in text
    js = result.to_json()
    assert js["ratio"] == result.ratio and js["rounds"] == 5 and "load" in js


def test_back_to_back_would_have_misjudged_the_same_drift():
    """What the alternating rounds fix: the same drift, measured one model after the other."""
    from pytest_kpmodel.bench.measure import measure

    clock, log = FakeClock(), []
    machine = {"slowness": 1.0, "calls": 0, "jump_at": 2 + 10}
    settings = BenchSettings(image_size=None, warmup=1, iters=10, num_images=2, stage_iters=0)
    cand = measure(DriftingModel(clock, 20.0, machine, log), images=images((8, 8), (8, 8)),
                   settings=settings, clock=clock)  # fmt: skip
    base = measure(DriftingModel(clock, 10.0, machine, log), images=images((8, 8), (8, 8)),
                   settings=settings, clock=clock)  # fmt: skip
    assert cand.fps / base.fps > 2.0  # the faster base looked slower: it ran on the busy machine


def test_needs_two_rounds():
    with pytest.raises(ValueError, match="at least 2 rounds"):
        alternating(FakeModel(), FakeModel(), images=images((8, 8)), settings=SETTINGS, rounds=1)
