"""pytest-xdist: the speed tests' skip reason and the workers' merged output."""

from __future__ import annotations

import json
from types import SimpleNamespace

from pytest_kpmodel.distributed.xdist import (
    XDIST_REASON,
    merge_worker_output,
    worker_output,
    xdist_reason,
)


def test_xdist_reason(monkeypatch):
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    assert xdist_reason(SimpleNamespace(workerinput={"workerid": "gw0"}))
    assert xdist_reason(SimpleNamespace(option=SimpleNamespace(numprocesses=2)))
    assert xdist_reason(SimpleNamespace(option=SimpleNamespace(numprocesses=0))) is None
    assert xdist_reason(SimpleNamespace()) is None
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw1")
    assert xdist_reason(None) == XDIST_REASON


def test_worker_outputs_merge_deterministically():
    def worker(checks, sections, warnings):
        s = SimpleNamespace(checks=checks, sections=sections, warnings=warnings)
        return worker_output(s)

    a = worker([{"nodeid": "t.py::b", "marker": "kp_thresholds", "passed": True}],
               {"metrics": {"bbox": {"AP": 0.5}}, "robustness": {"corruption": {"mpc": 0.1}}},
               ["w1"])  # fmt: skip
    b = worker([{"nodeid": "t.py::a", "marker": "kp_license", "passed": False}],
               {"metrics": {"bbox": {"AP": 0.5}}, "bench": [{"fps": 3.0}],
                "robustness": {"stability": [{"nodeid": "t.py::s"}]}}, ["w1", "w2"])  # fmt: skip
    merged = []
    for order in ((a, b), (b, a)):
        c = SimpleNamespace(checks=[], sections={}, warnings=[])
        for text in order:
            merge_worker_output(c, text)
        merged.append(json.dumps(vars(c), sort_keys=True))
    assert merged[0] == merged[1]
    c = json.loads(merged[0])
    assert [x["nodeid"] for x in c["checks"]] == ["t.py::a", "t.py::b"]
    assert c["sections"]["robustness"] == {"corruption": {"mpc": 0.1},
                                           "stability": [{"nodeid": "t.py::s"}]}  # fmt: skip
    assert c["sections"]["bench"] == [{"fps": 3.0}] and c["warnings"] == ["w1", "w2"]
