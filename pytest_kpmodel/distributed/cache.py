"""The prediction cache under several processes: its key is unchanged (the merged set is the
one-process set); rank 0 reads and writes the entry under a file lock, so xdist workers and
concurrent runs compute it once (:func:`cache_lock`), and broadcasts a hit, which also works
when the nodes of a multi-node job do not share a file system (:func:`cached_predictions`)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from .wire import pack_predictions, unpack_predictions

if TYPE_CHECKING:
    from ..predictions import PredictionSet
    from .process_group import Group


def cache_lock(path: Path | None):
    """An exclusive lock beside a cache entry (``<entry>.lock``): one process computes and
    writes it while the others wait, then read it. A no-op without a path."""
    if path is None:
        return contextlib.nullcontext()
    from filelock import FileLock

    path.parent.mkdir(parents=True, exist_ok=True)
    return FileLock(str(path) + ".lock")


def cached_predictions(
    group: Group,
    path: Path | None,
    key: str,
    image_ids: Sequence[int],
    compute: Callable[[], PredictionSet],
    read: bool = True,
) -> PredictionSet:
    """The cache entry at ``path`` when valid (and ``read``), else ``compute()`` (a collective
    under torchrun) written to ``path``. Only rank 0 touches the file; under a lock, so that
    xdist workers (and concurrent runs) compute an entry once. A hit is broadcast from rank 0
    to the other ranks, so nodes need not share the cache folder."""
    from .. import predictions

    lock = cache_lock(path if read and group.is_main else None)
    with lock:
        cached = None
        if group.is_main and read and path is not None:
            cached = predictions.load(path, key)
            if cached is not None and list(cached.image_ids) != list(image_ids):
                cached = None
        if group.enabled:
            group.agree(f"cache {key[:12]}")
            if group.broadcast_object(cached is not None):
                data = None
                if group.is_main:
                    pairs = zip(cached.image_ids, cached.predictions, strict=True)
                    data = pack_predictions(list(pairs))
                items, _ = unpack_predictions(group.broadcast_bytes(data))
                cached = predictions.PredictionSet(
                    [k for k, _ in items], [p for _, p in items], from_cache=True, key=key
                )
        if cached is not None:
            return cached
        ps = compute()
        ps.key = key
        if path is not None and group.is_main:
            predictions.save(path, ps)
    return ps


def prediction_key(kp) -> str:
    """The cache key of a run's (``KpSession``) predictions: weights, card, data and the
    settings that change a prediction."""
    from ..predictions import cache_key

    return cache_key(
        kp.weights_digest or "",
        kp.card.content(),
        kp.dataset.digest,
        device=kp.device.split(":")[0],
        precision=kp.settings.precision,
        batch_size=kp.settings.batch_size,
    )


def entry_path(kp, key: str) -> Path | None:
    """Where a run's predictions under ``key`` are cached; None without a cache folder."""
    return kp.settings.cache_dir / f"{key}.npz" if kp.settings.cache_dir else None


def is_cached(kp) -> bool:
    """Whether a run's (``KpSession``) predictions have a cache entry it would read."""
    path = entry_path(kp, prediction_key(kp)) if not kp.settings.no_cache else None
    return path is not None and path.is_file()


def session_predictions(kp):
    """A run's (``KpSession``) predictions, from the cache or predicted. Under torchrun each
    rank predicts its shard (whole batches) and every rank gets the merged set; rank 0 reads and
    writes the cache entry under a lock (xdist workers wait)."""
    from ..progress import step
    from .sharding import predict_sharded

    kp.check_ground_truth()  # refuse a bad ground truth before predicting
    key = prediction_key(kp)
    settings = kp.settings
    path = entry_path(kp, key)

    def compute():
        n = len(kp.dataset)
        with step(f"predicting {n} images with {kp.card.model.name} on {kp.device}", n) as bar:
            return predict_sharded(kp.dist, lambda: kp.model, kp.dataset, settings.batch_size,
                                   settings.workers, bar, tag=f"predict {key[:12]}")  # fmt: skip

    return cached_predictions(kp.dist, path, key, kp.dataset.image_ids, compute,
                              read=not settings.no_cache)  # fmt: skip
