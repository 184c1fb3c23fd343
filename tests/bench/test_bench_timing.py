"""Timing arithmetic and the timing loop, with a fake clock."""

from __future__ import annotations

import statistics

import numpy as np
import pytest
from bench_fakes import FakeClock

from pytest_kpmodel.bench.timing import (
    TimedLoop,
    batch_key,
    percentile,
    summarize,
    warmup_schedule,
)


@pytest.mark.parametrize("n", [1, 2, 5, 10, 101])
def test_percentile_matches_numpy_linear(n):
    rng = np.random.default_rng(n)
    values = sorted(rng.uniform(1, 100, n).tolist())
    for q in (0, 25, 50, 75, 90, 100):
        assert percentile(values, q) == pytest.approx(float(np.percentile(values, q)), rel=1e-12)


def test_summarize_percentiles_iqr_and_both_fps():
    s = summarize([0.010, 0.020, 0.030, 0.040, 0.050], batch_size=2, wall_s=0.2)
    assert (s.p50, s.p90, s.p25, s.p75) == pytest.approx((30.0, 46.0, 20.0, 40.0))
    assert s.iqr == pytest.approx(20.0)
    assert s.mean == pytest.approx(30.0)
    assert s.stdev == pytest.approx(statistics.stdev([10, 20, 30, 40, 50]))
    assert s.per_image_p50 == pytest.approx(15.0)
    assert s.fps_latency == pytest.approx(1000.0 * 2 / 30.0)  # images/s at the median call
    assert s.fps_throughput == pytest.approx(10 / 0.2)  # images over the loop's wall time
    with pytest.raises(ValueError):
        summarize([], 1, 1.0)


def test_timed_loop_is_driven_identically_by_run_and_pedantic():
    clock = FakeClock()
    seen = []

    def step(batch):
        seen.append(batch)
        clock.now += 0.01

    # strings have no shape: one "shape", so warmup=1 is one warm-up call
    loop = TimedLoop(step, ["a", "b", "c"], warmup=1, iters=4, sync=lambda: None, clock=clock)
    assert loop.warmup_calls == 1
    loop.run()
    assert seen == ["a", "a", "b", "c", "a"]
    assert loop.stats(1).iterations == 4 and loop.wall_s == pytest.approx(0.04)


def test_warmup_schedule_is_per_distinct_timed_shape():
    keys = ["s", "s", "t", "s", "u"]
    # timed calls (iters=4) use batches 0..3: shapes s (0, 1, 3) and t (2); u is never timed
    assert warmup_schedule(keys, iters=4, warmup=2) == [0, 2, 1, 2]
    assert warmup_schedule(keys, iters=4, warmup=0) == []
    assert warmup_schedule(keys, iters=1, warmup=3) == [0, 0, 0]
    assert warmup_schedule(keys, iters=50, warmup=1) == [0, 2, 4]


def test_batch_key_is_the_shapes_and_dtypes():
    import torch

    a = [torch.zeros(3, 8, 8), torch.zeros(3, 8, 8)]
    assert batch_key(a) == batch_key([torch.ones(3, 8, 8), torch.ones(3, 8, 8)])
    assert batch_key(a) != batch_key([torch.zeros(3, 8, 9), torch.zeros(3, 8, 8)])
    assert batch_key(a) != batch_key([torch.zeros(3, 8, 8, dtype=torch.half)] * 2)
