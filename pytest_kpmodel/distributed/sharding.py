"""The evaluation set split by whole batches of the global order (:func:`shard_indices`), and
predictions over it with every rank predicting its shard (:func:`predict_sharded`): each image
is batched with the same neighbours as in a one-process run, so batched padding, and therefore
every prediction, is the same; every rank ends up with the full set in the dataset's order."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from .wire import merge_shards, pack_predictions

if TYPE_CHECKING:
    from ..data import CocoKeypointDataset
    from ..predictions import PredictionSet
    from .process_group import Group


STRATEGIES = ("contiguous", "strided")


def shard_indices(n: int, world_size: int, rank: int, *, batch_size: int = 1,
                  strategy: str = "contiguous") -> list[int]:  # fmt: skip
    """The indices of ``range(n)`` that ``rank`` of ``world_size`` handles, made of whole
    batches of the global order (batch ``b`` = indices ``[b*batch_size, (b+1)*batch_size)``):

    - ``contiguous``: consecutive runs of batches, sizes differing by at most one batch;
    - ``strided``: batch ``b`` goes to rank ``b % world_size``.

    Either way the shards partition ``range(n)``, each shard is in increasing order, and
    batching a shard with ``batch_size`` reproduces exactly the global batches it holds (only
    the global last batch may be short, and it is the last of its shard), so each image is
    padded together with the same neighbours as in a one-process run. Deterministic."""
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} of world size {world_size}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    n_batches = -(-n // batch_size)
    if strategy == "contiguous":
        base, extra = divmod(n_batches, world_size)
        start = rank * base + min(rank, extra)
        batches: Sequence[int] = range(start, start + base + (1 if rank < extra else 0))
    elif strategy == "strided":
        batches = range(rank, n_batches, world_size)
    else:
        raise ValueError(f"strategy {strategy!r}: one of {', '.join(STRATEGIES)}")
    return [i for b in batches for i in range(b * batch_size, min(n, (b + 1) * batch_size))]


def predict_sharded(
    group: Group,
    get_model: Callable[[], Any],
    dataset: CocoKeypointDataset,
    batch_size: int = 1,
    num_workers: int | None = None,
    progress: Callable[[int], Any] | None = None,
    tag: str = "predict",
) -> PredictionSet:
    """``predictions.predict_dataset`` over the whole set, each rank predicting its shard of
    whole batches; every rank returns the full set in the dataset's image order."""
    from ..predictions import PredictionSet, predict_dataset

    if not group.enabled:
        return predict_dataset(get_model(), dataset, batch_size, num_workers, progress)

    def local() -> bytes:
        indices = group.shard(len(dataset), batch_size)
        if not indices:
            return pack_predictions([])
        ps = predict_dataset(get_model(), dataset.subset(indices), batch_size, num_workers,
                             progress)  # fmt: skip
        return pack_predictions(list(zip(ps.image_ids, ps.predictions, strict=True)), ps.seconds)

    payloads = group.gather_outcomes(tag, local)
    preds, seconds = merge_shards(payloads, dataset.image_ids)
    return PredictionSet(list(dataset.image_ids), preds, seconds=seconds)
