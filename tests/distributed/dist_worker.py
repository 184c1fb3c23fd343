"""Run under ``torchrun --nproc_per_node=2`` (gloo, CPU) by test_dist_collectives.py: exercises
``pytest_kpmodel.distributed.process_group.Group`` with real collectives and writes what each rank saw to
``$KP_DIST_OUT/rank<N>.json``.

Scenarios, in this order (every rank runs them all):
bytes of different sizes, object broadcast, on_main value/error, gather_outcomes with one
failing rank, the prediction cache (miss then hit, broadcast from rank 0), a sharded corruption
sweep against a one-process sweep, ranks at different steps, then a rank that never arrives
(the others must fail after the timeout, not hang).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import torch

from pytest_kpmodel.adapters.base import Prediction
from pytest_kpmodel.distributed.cache import cached_predictions
from pytest_kpmodel.distributed.environment import DistributedError, detect
from pytest_kpmodel.distributed.process_group import Group, default_timeout
from pytest_kpmodel.distributed.sweep import ShardedSweep
from pytest_kpmodel.errors import KpModelError
from pytest_kpmodel.predictions import PredictionSet


class FakeModel:
    """Deterministic predictions from the pixels; batching-independent."""

    device = torch.device("cpu")
    num_keypoints = 3

    def predict(self, images):
        out = []
        for im in images:
            m = float(im.mean())
            out.append(
                Prediction(
                    torch.tensor([[m, m, m + 10, m + 10]]),
                    torch.tensor([m]),
                    torch.tensor([1]),
                    torch.full((1, 3, 3), m),
                )
            )
        return out


def main() -> None:
    out_dir = Path(os.environ["KP_DIST_OUT"])
    env = detect()
    g = Group(env, "cpu")
    seen: dict[str, object] = {"rank": env.rank, "world": env.world_size}

    # 1. bytes of different sizes (rank 1 sends nothing)
    data = b"x" * 1000 if env.rank == 0 else b""
    seen["gather_sizes"] = [len(b) for b in g.all_gather_bytes(data)]
    seen["broadcast"] = g.broadcast_object({"from": env.rank})

    # 2. on_main: computed on rank 0 only
    calls = []
    seen["on_main"] = g.on_main("value", lambda: calls.append(1) or f"rank {env.rank}")
    seen["on_main_calls"] = len(calls)
    try:
        g.on_main("error", lambda: (_ for _ in ()).throw(KpModelError("bad metrics")))
    except KpModelError as exc:
        seen["on_main_error"] = str(exc)

    # 3. one rank fails: every rank raises, none hangs
    def maybe_fail() -> bytes:
        if env.rank == 1:
            raise KpModelError("image 7 undecodable")
        return b"ok"

    try:
        g.gather_outcomes("shard", maybe_fail)
    except KpModelError as exc:
        seen["gather_error"] = str(exc)

    # 4. the prediction cache: rank 0 writes, then a hit is broadcast
    cache = out_dir / "cache" / "k.npz"
    ids = [1, 2, 3]
    computed = []

    def compute() -> PredictionSet:
        computed.append(1)
        preds = FakeModel().predict([torch.full((3, 4, 4), float(i)) for i in ids])
        return PredictionSet(ids, preds)

    first = cached_predictions(g, cache, "k" * 64, ids, compute)
    second = cached_predictions(g, cache, "k" * 64, ids, compute)
    seen["cache"] = {
        "computed": len(computed),
        "first_from_cache": first.from_cache,
        "second_from_cache": second.from_cache,
        "equal": all(
            torch.equal(a.boxes, b.boxes) and torch.equal(a.keypoints, b.keypoints)
            for a, b in zip(first.predictions, second.predictions, strict=True)
        ),
        "entries": sorted(p.name for p in cache.parent.glob("*.npz")),
    }

    # 5. the sharded corruption sweep equals the one-process sweep
    from pytest_kpmodel.robustness.corruption_eval import run

    gen = torch.Generator().manual_seed(0)
    images = [torch.rand(3, 24, 32, generator=gen) for _ in range(7)]

    def evaluate(preds):
        return {"AP": sum(float(p.scores.sum()) for p in preds) / len(preds)}

    kwargs = {"severities": (1, 3), "corruptions": ("gaussian_noise", "contrast"), "seed": 0}
    alone = run(FakeModel(), images, evaluate, batch_size=2, **kwargs).to_dict()
    sweep = ShardedSweep(g, FakeModel(), images, evaluate, batch_size=2)
    sharded = run(sweep.model, sweep.images, sweep.evaluate, batch_size=2, **kwargs).to_dict()
    alone.pop("timing_s"), sharded.pop("timing_s")
    seen["sweep_equal"] = alone == sharded
    seen["sweep_shard"] = sorted(sweep.indices)

    # 6. ranks at different steps fail with a message, and the group stays failed
    try:
        g.agree("kp_eval" if env.rank == 0 else "kp_corruption_eval")
    except DistributedError as exc:
        seen["mismatch"] = str(exc)
    try:
        g.on_main("after", lambda: 1)
    except DistributedError as exc:
        seen["after_mismatch"] = str(exc)[:40]

    # 7. a rank that never arrives: the others fail after the timeout ($KPMODEL_DIST_TIMEOUT)
    late = Group(env, "cpu")
    start = time.perf_counter()
    if env.rank == 0:
        try:
            late.all_gather_bytes(b"x")
        except DistributedError as exc:
            seen["timeout"] = str(exc)[:200]
        seen["timeout_s"] = time.perf_counter() - start
    (out_dir / f"rank{env.rank}.json").write_text(json.dumps(seen))
    if env.rank == 1:
        time.sleep(
            2 * default_timeout().total_seconds()
        )  # stay alive (never calling the collective) until rank 0 gave up
    sys.stdout.flush()
    os._exit(0)  # the gloo group is in an undefined state after the timeout: skip teardown


if __name__ == "__main__":
    main()
