"""distributed.py without a process group: environment, devices, sharding, the wire format,
the cache lock, xdist helpers."""

from __future__ import annotations

import json
import threading
import time
from types import SimpleNamespace

import pytest
import torch

from pytest_kpmodel import distributed as D
from pytest_kpmodel.adapters.base import Prediction
from pytest_kpmodel.predictions import PredictionSet

TORCHRUN = {"RANK": "3", "WORLD_SIZE": "8", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2",
            "GROUP_RANK": "1", "MASTER_ADDR": "10.0.0.1", "MASTER_PORT": "29500"}  # fmt: skip


def test_detect_torchrun_environment():
    env = D.detect(TORCHRUN)
    assert (env.rank, env.world_size, env.local_rank, env.local_world_size, env.node_rank) == (
        3, 8, 1, 2, 1)  # fmt: skip
    assert (env.master_addr, env.master_port) == ("10.0.0.1", 29500)
    assert env.enabled and not env.is_main
    assert not D.detect({}).enabled and D.detect({}).is_main


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"WORLD_SIZE": "two"}, "$WORLD_SIZE='two': expected an integer"),
        ({**TORCHRUN, "RANK": "8"}, "$RANK=8: must be in [0, $WORLD_SIZE=8)"),
        ({"WORLD_SIZE": "2", "RANK": "0"}, "$MASTER_ADDR/$MASTER_PORT are not set"),
    ],
)
def test_detect_errors_name_the_variable(environ, message):
    with pytest.raises(D.DistributedError) as info:
        D.detect(environ)
    assert message in str(info.value)
    assert D.is_main_process(environ)  # never raises: the first collective reports it


def test_devices_backend_timeout(monkeypatch):
    assert D.rank_device("cpu", TORCHRUN) == "cpu"
    if not torch.cuda.is_available():
        assert D.rank_device(None, TORCHRUN) == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    assert D.rank_device("cuda", TORCHRUN) == "cuda:1"  # LOCAL_RANK
    assert D.rank_device(None, TORCHRUN) == "cuda:1"
    assert D.rank_device("cuda:3", TORCHRUN) == "cuda:3"  # explicit: honoured
    assert D.rank_device("cuda", {"PYTEST_XDIST_WORKER": "gw5"}) == "cuda:1"  # 5 % 4
    assert D.rank_device("cuda", {}) == "cuda"
    with pytest.raises(D.DistributedError, match="only 4 CUDA device"):
        D.rank_device("cuda", {**TORCHRUN, "LOCAL_RANK": "6"})
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)  # one GPU shown per process
    assert D.rank_device("cuda", TORCHRUN) == "cuda:0"
    assert D.default_backend("cuda:1", {}) == "nccl"
    assert D.default_backend("cpu", {}) == "gloo"
    assert D.default_backend("cpu", {D.ENV_BACKEND: "mpi"}) == "mpi"
    assert D.default_timeout({}).total_seconds() == 1800
    assert D.default_timeout({D.ENV_TIMEOUT: "90"}).total_seconds() == 90
    with pytest.raises(D.DistributedError, match="KPMODEL_DIST_TIMEOUT"):
        D.default_timeout({D.ENV_TIMEOUT: "soon"})


@pytest.mark.parametrize("strategy", D.STRATEGIES)
@pytest.mark.parametrize("n", [0, 1, 7, 8, 33])
@pytest.mark.parametrize("world", [1, 2, 3, 8])
@pytest.mark.parametrize("batch", [1, 2, 4])
def test_shards_are_whole_batches_of_the_global_order(strategy, n, world, batch):
    shards = [D.shard_indices(n, world, r, batch_size=batch, strategy=strategy)
              for r in range(world)]  # fmt: skip
    assert sorted(i for s in shards for i in s) == list(range(n))  # a partition
    global_batches = [list(range(b, min(n, b + batch))) for b in range(0, n, batch)]
    for s in shards:
        assert s == sorted(s)
        # Batching the shard by itself reproduces global batches: same padding neighbours.
        local_batches = [s[i : i + batch] for i in range(0, len(s), batch)]
        assert all(b in global_batches for b in local_batches)
    counts = [-(-len(s) // batch) for s in shards]
    assert max(counts) - min(counts) <= 1  # balanced to within one batch
    assert shards == [D.shard_indices(n, world, r, batch_size=batch, strategy=strategy)
                      for r in range(world)]  # fmt: skip


def test_shard_examples_and_errors():
    assert D.shard_indices(7, 2, 0, batch_size=2) == [0, 1, 2, 3]
    assert D.shard_indices(7, 2, 1, batch_size=2) == [4, 5, 6]
    assert D.shard_indices(7, 2, 1, batch_size=2, strategy="strided") == [2, 3, 6]
    with pytest.raises(ValueError, match="strategy"):
        D.shard_indices(4, 2, 0, strategy="random")
    with pytest.raises(ValueError, match="rank 2 of world size 2"):
        D.shard_indices(4, 2, 2)


def _pred(seed: int, n: int, dtype=torch.float32) -> Prediction:
    g = torch.Generator().manual_seed(seed)
    return Prediction(
        torch.rand(n, 4, generator=g).to(dtype),
        torch.rand(n, generator=g).to(dtype),
        torch.randint(0, 3, (n,), generator=g),
        torch.rand(n, 17, 3, generator=g).to(dtype),
    )


def _same(a: Prediction, b: Prediction) -> bool:
    return all(
        x.dtype == y.dtype and x.shape == y.shape and torch.equal(x, y)
        for x, y in zip(
            (a.boxes, a.scores, a.labels, a.keypoints),
            (b.boxes, b.scores, b.labels, b.keypoints),
            strict=True,
        )  # fmt: skip
    )


def test_predictions_round_trip_exactly_and_merge_in_order():
    items = [(10, _pred(0, 3)), (11, _pred(1, 0)), (12, _pred(2, 2, torch.bfloat16)),
             (13, _pred(3, 1, torch.float64))]  # fmt: skip
    back, seconds = D.unpack_predictions(D.pack_predictions(items, seconds=1.5))
    assert seconds == 1.5 and [k for k, _ in back] == [10, 11, 12, 13]
    assert all(_same(a, b) for (_, a), (_, b) in zip(items, back, strict=True))
    assert D.unpack_predictions(D.pack_predictions([])) == ([], 0.0)
    # Two ranks' shards, merged into the global order whatever the rank order.
    merged, s = D.merge_shards(
        [D.pack_predictions(items[2:], 2.0), D.pack_predictions(items[:2], 1.0)], [10, 11, 12, 13]
    )
    assert s == 2.0 and all(_same(a, b) for (_, a), b in zip(items, merged, strict=True))
    with pytest.raises(D.DistributedError, match="which another rank sent"):
        D.merge_shards([D.pack_predictions(items[:2]), D.pack_predictions(items[1:])],
                       [10, 11, 12, 13])  # fmt: skip
    with pytest.raises(D.DistributedError, match="do not cover"):
        D.merge_shards([D.pack_predictions(items[:2])], [10, 11, 12, 13])
    with pytest.raises(D.DistributedError, match="unknown format"):
        D.unpack_predictions(b"\x80\x04pickle")


def test_one_rank_group_is_local():
    g = D.Group(D.DistEnv(), "cpu")
    assert not g.enabled and g.is_main and g.shard(5, 2) == [0, 1, 2, 3, 4]
    assert g.on_main("x", lambda: 42) == 42
    assert g.gather_outcomes("x", lambda: b"ab") == [b"ab"]
    assert g.all_gather_object({"a": 1}) == [{"a": 1}] and g.broadcast_object(3) == 3
    g.agree("anything")  # no-op


def test_cache_lock_serialises_compute_and_write(tmp_path):
    """Two threads standing in for xdist workers: one computes and writes, the other waits on
    the lock and reads the entry."""
    g = D.Group(D.DistEnv(), "cpu")
    path = tmp_path / "cache" / "e.npz"
    computed: list[str] = []
    results: dict[str, PredictionSet] = {}

    def compute(name):
        def inner():
            computed.append(name)
            time.sleep(0.3)  # long enough for the other worker to arrive and wait
            return PredictionSet([1, 2], [_pred(0, 2), _pred(1, 1)])

        return inner

    def worker(name):
        results[name] = D.cached_predictions(g, path, "e" * 64, [1, 2], compute(name))

    threads = [threading.Thread(target=worker, args=(n,)) for n in ("gw0", "gw1")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(computed) == 1
    assert sorted(r.from_cache for r in results.values()) == [False, True]
    assert [p.name for p in path.parent.glob("*.npz")] == ["e.npz"]
    # --kp-no-cache: recomputed (no lock, no read), still written.
    again = D.cached_predictions(g, path, "e" * 64, [1, 2], compute("again"), read=False)
    assert not again.from_cache and computed[-1] == "again"


def test_xdist_worker_index(monkeypatch):
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw0")
    assert D.xdist_worker_index() == 0


def test_xdist_reason(monkeypatch):
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    assert D.xdist_reason(SimpleNamespace(workerinput={"workerid": "gw0"}))
    assert D.xdist_reason(SimpleNamespace(option=SimpleNamespace(numprocesses=2)))
    assert D.xdist_reason(SimpleNamespace(option=SimpleNamespace(numprocesses=0))) is None
    assert D.xdist_reason(SimpleNamespace()) is None
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw1")
    assert D.xdist_reason(None) == D.XDIST_REASON


def test_worker_outputs_merge_deterministically():
    def worker(checks, sections, warnings):
        s = SimpleNamespace(checks=checks, sections=sections, warnings=warnings)
        return D.worker_output(s)

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
            D.merge_worker_output(c, text)
        merged.append(json.dumps(vars(c), sort_keys=True))
    assert merged[0] == merged[1]
    c = json.loads(merged[0])
    assert [x["nodeid"] for x in c["checks"]] == ["t.py::a", "t.py::b"]
    assert c["sections"]["robustness"] == {"corruption": {"mpc": 0.1},
                                           "stability": [{"nodeid": "t.py::s"}]}  # fmt: skip
    assert c["sections"]["bench"] == [{"fps": 3.0}] and c["warnings"] == ["w1", "w2"]
