"""The prediction cache's lock: one worker computes, the others read."""

from __future__ import annotations

import threading
import time

from dist_helpers import make_prediction

from pytest_kpmodel.distributed.cache import cached_predictions
from pytest_kpmodel.distributed.environment import DistEnv
from pytest_kpmodel.distributed.process_group import Group
from pytest_kpmodel.predictions import PredictionSet


def test_cache_lock_serialises_compute_and_write(tmp_path):
    """Two threads standing in for xdist workers: one computes and writes, the other waits on
    the lock and reads the entry."""
    g = Group(DistEnv(), "cpu")
    path = tmp_path / "cache" / "e.npz"
    computed: list[str] = []
    results: dict[str, PredictionSet] = {}

    def compute(name):
        def inner():
            computed.append(name)
            time.sleep(0.3)  # long enough for the other worker to arrive and wait
            return PredictionSet([1, 2], [make_prediction(0, 2), make_prediction(1, 1)])

        return inner

    def worker(name):
        results[name] = cached_predictions(g, path, "e" * 64, [1, 2], compute(name))

    threads = [threading.Thread(target=worker, args=(n,)) for n in ("gw0", "gw1")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(computed) == 1
    assert sorted(r.from_cache for r in results.values()) == [False, True]
    assert [p.name for p in path.parent.glob("*.npz")] == ["e.npz"]
    # --kp-no-cache: recomputed (no lock, no read), still written.
    again = cached_predictions(g, path, "e" * 64, [1, 2], compute("again"), read=False)
    assert not again.from_cache and computed[-1] == "again"
