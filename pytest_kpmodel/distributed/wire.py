"""Predictions between ranks: safetensors bytes (no pickle; values, dtypes and shapes come back
exactly), merged back into the global image order (:func:`merge_shards`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .environment import DistributedError

if TYPE_CHECKING:
    from ..adapters.base import Prediction


_FIELDS = ("boxes", "scores", "labels", "keypoints")


def pack_predictions(items: Sequence[tuple[int, Prediction]], seconds: float = 0.0) -> bytes:
    """``(key, Prediction)`` pairs as safetensors bytes: values, dtypes and shapes come back
    exactly (bf16 included), and nothing is pickled. Each field is concatenated over the items,
    one run per dtype and trailing shape (``<field>.<run>.values``, with the items it holds and
    their row counts), because one tensor per image makes the header the bottleneck."""
    import torch
    from safetensors.torch import save

    tensors = {
        "keys": torch.tensor([int(k) for k, _ in items], dtype=torch.int64),
        "seconds": torch.tensor([float(seconds)], dtype=torch.float64),
    }
    for name in _FIELDS:
        columns = [getattr(p, name).detach().cpu() for _, p in items]
        runs: dict[tuple[torch.dtype, tuple[int, ...]], list[int]] = {}
        for i, t in enumerate(columns):
            runs.setdefault((t.dtype, tuple(t.shape[1:])), []).append(i)
        for r, members in enumerate(runs.values()):
            tensors[f"{name}.{r}.values"] = torch.cat([columns[i] for i in members]).contiguous()
            tensors[f"{name}.{r}.members"] = torch.tensor(members, dtype=torch.int64)
            tensors[f"{name}.{r}.counts"] = torch.tensor(
                [columns[i].shape[0] for i in members], dtype=torch.int64
            )
    return save(tensors)


def unpack_predictions(data: bytes) -> tuple[list[tuple[int, Prediction]], float]:
    import torch
    from safetensors import SafetensorError
    from safetensors.torch import load

    from ..adapters.base import Prediction

    try:
        tensors = load(data)
        keys = tensors["keys"].tolist()
        seconds = float(tensors["seconds"][0])
        columns: dict[str, list[Any]] = {name: [None] * len(keys) for name in _FIELDS}
        for name in _FIELDS:
            r = 0
            while f"{name}.{r}.values" in tensors:
                counts = tensors[f"{name}.{r}.counts"].tolist()
                parts = torch.split(tensors[f"{name}.{r}.values"], counts)
                for i, part in zip(tensors[f"{name}.{r}.members"].tolist(), parts, strict=True):
                    columns[name][i] = part
                r += 1
        if any(t is None for col in columns.values() for t in col):
            raise KeyError("a prediction field is missing")
    except (SafetensorError, KeyError, IndexError, ValueError, RuntimeError) as exc:
        raise DistributedError(f"a rank sent predictions in an unknown format ({exc})") from None
    out = [(int(k), Prediction(*(columns[n][i] for n in _FIELDS))) for i, k in enumerate(keys)]
    return out, seconds


def merge_shards(payloads: Sequence[bytes], order: Sequence[int]) -> tuple[list[Prediction], float]:
    """The ranks' packed shards as one list in ``order`` (keys); each key exactly once. Returns
    the predictions and the slowest rank's seconds."""
    by_key: dict[int, Prediction] = {}
    seconds = 0.0
    for rank, data in enumerate(payloads):
        items, s = unpack_predictions(data)
        seconds = max(seconds, s)
        for key, p in items:
            if key in by_key:
                raise DistributedError(f"rank {rank} sent image {key}, which another rank sent")
            by_key[key] = p
    missing = [k for k in order if k not in by_key]
    if missing or len(by_key) != len(order):
        raise DistributedError(
            f"the ranks' shards do not cover the evaluation set (missing {missing[:5]}, "
            f"{len(by_key)} received for {len(order)} images)"
        )
    return [by_key[k] for k in order], seconds
