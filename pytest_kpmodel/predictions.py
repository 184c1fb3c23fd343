"""Predictions over an evaluation set: computed once, converted to COCO results, cached on disk.

The cache key is the sha256 of everything that changes the output: the weights' digest, the
card's bytes, the annotations' digest and the settings (device type, precision, batch size, which
pads images together). Entries are ``.npz`` files (read with ``allow_pickle=False``) with a digest
of their own content, written atomically; an entry that fails to read or verify is ignored and
rewritten, never trusted.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .adapters.base import KeypointModel, Prediction
from .atomic import replacing
from .data import CocoKeypointDataset, iterate_batches

CACHE_FORMAT = 1


@dataclass
class PredictionSet:
    image_ids: list[int]
    predictions: list[Prediction]  # on the CPU, in image_ids order
    seconds: float = 0.0  # wall time of inference, 0 when loaded from cache
    from_cache: bool = False
    key: str = ""

    def to_coco_results(self, category_id: int = 1) -> list[dict[str, Any]]:
        """COCO result dicts in image order: a plain list, what pycocotools' ``loadRes`` takes."""
        return list(self.to_result_arrays(category_id))

    def to_result_arrays(self, category_id: int = 1):
        """The same dicts as a ``metrics.detections.ResultArrays``: their columns travel with
        them, so the evaluation's checks run on arrays."""
        return _coco_results(_to_arrays(self), category_id)


def cache_key(weights_digest: str, card_bytes: bytes, dataset_digest: str, **settings: Any) -> str:
    payload = json.dumps(
        {
            "format": CACHE_FORMAT,
            "weights": weights_digest,
            "card": hashlib.sha256(card_bytes).hexdigest(),
            "dataset": dataset_digest,
            "settings": settings,
        },
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode()).hexdigest()


def predict_dataset(
    model: KeypointModel,
    dataset: CocoKeypointDataset,
    batch_size: int = 1,
    num_workers: int | None = None,
    progress: Callable[[int], Any] | None = None,
) -> PredictionSet:
    """Run the model over every image, in order, with decoding overlapped in workers.
    ``progress(n)`` is called with the images done after each batch; without it the step shows
    its own line and bar (``progress.step``: on a terminal only)."""
    from .progress import step

    device = model.device
    pin = getattr(device, "type", str(device)) == "cuda"
    preds: list[Prediction | None] = [None] * len(dataset)
    own = step(describe_predicting(model, len(dataset)), len(dataset)) if progress is None else None
    done: Callable[[int], Any] = own if own is not None else progress  # type: ignore[assignment]
    start = time.perf_counter()
    with own or nullcontext():
        for indices, images in iterate_batches(dataset, batch_size, num_workers, pin_memory=pin):
            batch = [im.to(device, non_blocking=True).float().div_(255) for im in images]
            for i, p in zip(indices, model.predict(batch), strict=True):
                preds[i] = p.cpu()
            done(len(indices))
    elapsed = time.perf_counter() - start
    return PredictionSet(list(dataset.image_ids), preds, seconds=elapsed)  # type: ignore[arg-type]


def describe_predicting(model: Any, images: int) -> str:
    """The line of a prediction step: 'predicting 200 images with kp-tiny-mod on cpu'."""
    name = getattr(model, "name", "") or type(model).__name__
    return f"predicting {images} images with {name} on {getattr(model, 'device', 'cpu')}"


# -- on-disk cache ------------------------------------------------------------------------------
def save(path: Path, ps: PredictionSet) -> None:
    import numpy as np

    arrays = _to_arrays(ps)
    arrays["content_digest"] = np.frombuffer(_digest(arrays).encode(), dtype=np.uint8)
    # Whole or not at all: xdist workers and torchrun ranks read the entry another one wrote.
    with replacing(path, mode=0o600) as f:  # the cache is this user's
        np.savez(f, **arrays)


def load(path: Path, key: str) -> PredictionSet | None:
    """The cached set, or None when absent, unreadable or not matching its own digest."""
    import numpy as np

    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        stored = arrays.pop("content_digest").tobytes().decode()
        if stored != _digest(arrays):
            return None
        return CachedPredictionSet(_checked(arrays), key)
    except Exception:  # noqa: BLE001 - any defect in a cache file means "recompute"
        return None


class CachedPredictionSet(PredictionSet):
    """A set read from the cache: numpy arrays, so that a cached run that only evaluates
    (``kp_eval``, the accuracy gates) never imports torch; the per-image ``Prediction``
    tensors are made on first use of ``predictions``."""

    def __init__(self, arrays: dict[str, Any], key: str) -> None:
        self.arrays = arrays
        self.image_ids = [int(i) for i in arrays["image_ids"].tolist()]
        self.seconds, self.from_cache, self.key = 0.0, True, key
        self._predictions: list[Prediction] | None = None

    @property
    def predictions(self) -> list[Prediction]:  # type: ignore[override]
        if self._predictions is None:
            self._predictions = _from_arrays(self.arrays).predictions
        return self._predictions

    def to_result_arrays(self, category_id: int = 1):
        return _coco_results(self.arrays, category_id)


def _coco_results(a: dict[str, Any], category_id: int):
    """COCO results of cache-layout arrays: boxes x1, y1, x2, y2 (float32) become x, y, w, h
    subtracted in double precision, every number the float32 value as a Python float."""
    import numpy as np

    from .metrics.detections import ResultArrays

    b = a["boxes"].astype(np.float64)
    xywh = np.column_stack([b[:, 0], b[:, 1], b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]])
    return ResultArrays.from_columns(
        np.repeat(a["image_ids"], a["counts"]), category_id, xywh, a["scores"], a["keypoints"]
    )


def _checked(a: dict[str, Any]) -> dict[str, Any]:
    """The arrays of a cache entry, refused (ValueError) when they do not fit together."""
    counts, n = a["counts"], len(a["boxes"])
    if counts.sum() != n or len(counts) != len(a["image_ids"]) or (counts < 0).any():
        raise ValueError("inconsistent cache entry")
    if a["boxes"].shape != (n, 4) or a["scores"].shape != (n,) or a["labels"].shape != (n,):
        raise ValueError("inconsistent cache entry")
    if a["keypoints"].ndim != 3 or len(a["keypoints"]) != n or a["keypoints"].shape[2] != 3:
        raise ValueError("inconsistent cache entry")
    return a


def _to_arrays(ps: PredictionSet) -> dict[str, Any]:
    import numpy as np
    import torch

    k = ps.predictions[0].keypoints.shape[1] if ps.predictions else 0
    counts = [len(p) for p in ps.predictions]

    def cat(xs, shape):
        if not xs:
            return np.zeros(shape, np.float32)
        t = torch.cat(xs).cpu()
        # numpy has no bfloat16; float32 holds fp16 and bf16 values exactly.
        return (t.float() if t.is_floating_point() else t).numpy()

    return {
        "image_ids": np.asarray(ps.image_ids, dtype=np.int64),
        "counts": np.asarray(counts, dtype=np.int64),
        "boxes": cat([p.boxes for p in ps.predictions], (0, 4)).astype(np.float32),
        "scores": cat([p.scores for p in ps.predictions], (0,)).astype(np.float32),
        "labels": cat([p.labels for p in ps.predictions], (0,)).astype(np.int64),
        "keypoints": cat([p.keypoints for p in ps.predictions], (0, k, 3)).astype(np.float32),
    }


def _from_arrays(a: dict[str, Any]) -> PredictionSet:
    import numpy as np
    import torch

    counts = a["counts"]
    if counts.sum() != len(a["boxes"]) or len(counts) != len(a["image_ids"]):
        raise ValueError("inconsistent cache entry")
    offsets = np.concatenate([[0], np.cumsum(counts)])
    preds = []
    for i in range(len(counts)):
        s, e = int(offsets[i]), int(offsets[i + 1])
        preds.append(
            Prediction(
                boxes=torch.from_numpy(a["boxes"][s:e].copy()),
                scores=torch.from_numpy(a["scores"][s:e].copy()),
                labels=torch.from_numpy(a["labels"][s:e].copy()),
                keypoints=torch.from_numpy(a["keypoints"][s:e].copy()),
            )
        )
    return PredictionSet([int(i) for i in a["image_ids"]], preds)


def _digest(arrays: dict[str, Any]) -> str:
    h = hashlib.sha256()
    for name in sorted(arrays):
        arr = arrays[name]
        h.update(f"{name}:{arr.dtype}:{arr.shape}".encode())
        h.update(arr.tobytes())
    return h.hexdigest()
