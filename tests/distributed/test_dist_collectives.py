"""``distributed.process_group.Group`` with real collectives: two gloo ranks under torchrun (dist_worker.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from dist_helpers import explain, run, torchrun

pytestmark = pytest.mark.slow


def test_collectives_agree_fail_together_and_time_out(tmp_path):
    worker = Path(__file__).with_name("dist_worker.py")
    proc = run(torchrun(2, str(worker)), tmp_path, timeout=180, KP_DIST_OUT=str(tmp_path),
               KPMODEL_DIST_TIMEOUT="4")  # fmt: skip
    assert proc.returncode == 0, explain(proc)
    r0, r1 = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1))
    for r in (r0, r1):
        assert r["world"] == 2
        assert r["gather_sizes"] == [1000, 0]
        assert r["broadcast"] == {"from": 0}
        assert r["on_main"] == "rank 0"  # rank 0's value everywhere
        assert r["on_main_error"] == "bad metrics"  # rank 0's error everywhere, same message
        assert r["gather_error"] == "image 7 undecodable"  # rank 1 failed: rank 0 raises too
        assert r["cache"] == {"computed": 1, "first_from_cache": False,
                              "second_from_cache": True, "equal": True,
                              "entries": ["k.npz"]}  # fmt: skip
        assert r["sweep_equal"] is True
        assert "rank 0: #16 kp_eval; rank 1: #16 kp_corruption_eval" in r["mismatch"]
        assert r["after_mismatch"].startswith("the ranks are at different steps")
    assert (r0["on_main_calls"], r1["on_main_calls"]) == (1, 0)  # evaluated once
    assert r0["sweep_shard"] == [0, 1, 2, 3] and r1["sweep_shard"] == [4, 5, 6]
    assert "all_gather failed" in r0["timeout"] and r0["timeout_s"] < 60
