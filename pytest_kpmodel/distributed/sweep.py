"""The corruption sweep across ranks (:class:`ShardedSweep`): each rank predicts its shard, rank 0
evaluates the merged predictions once and broadcasts the metrics."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .environment import DistributedError
from .wire import merge_shards, pack_predictions

if TYPE_CHECKING:
    from ..adapters.base import Prediction
    from .process_group import Group


class _RecordingImages:
    """The sweep's images, remembering which indices ``corruption_eval.run`` asked for last."""

    def __init__(self, images: Sequence[Any]) -> None:
        self.images = images
        self.requested: list[int] = []

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> Any:
        self.requested.append(int(i))
        return self.images[i]


class _ShardModel:
    """The model, predicting only the batches of this rank's shard (empty placeholders for the
    others, replaced by the owners' predictions when the sweep's evaluation gathers them)."""

    def __init__(self, sweep: ShardedSweep, inner: Any) -> None:
        self._sweep = sweep
        self.inner = inner

    def predict(self, images):
        from ..adapters.base import Prediction

        sweep = self._sweep
        idx = sweep.images.requested[-len(images) :]
        sweep.images.requested.clear()
        mine = [i in sweep.indices for i in idx]
        if len(idx) == len(images) and all(mine):
            if sweep.error is not None:
                return [Prediction.empty(sweep.num_keypoints) for _ in images]
            try:
                return self.inner.predict(images)
            except Exception as exc:  # noqa: BLE001 - reported to every rank at the evaluation
                sweep.error = exc
                return [Prediction.empty(sweep.num_keypoints) for _ in images]
        if len(idx) == len(images) and not any(mine):
            return [Prediction.empty(sweep.num_keypoints) for _ in images]
        sweep.error = DistributedError(
            f"the corruption sweep batched images {idx}, across shards: its batches no longer "
            "match the shards (batch size changed?)"
        )
        return [Prediction.empty(sweep.num_keypoints) for _ in images]

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class ShardedSweep:
    """``robustness.corruption_eval.run`` across ranks without changing it: pass ``images``,
    ``model`` and ``evaluate`` of this object instead of the originals.

    ``run`` goes through every batch on every rank (so the corrupted images, whose noise is
    keyed by the image's index, are exactly those of a one-process run); the model predicts
    only this rank's shard (whole batches of ``batch_size``); at each evaluation the ranks
    exchange their predictions, rank 0 evaluates the merged list once and broadcasts the
    metrics. What is not shared out: applying the corruption, which every rank does for every
    image (cheap next to inference on a GPU; see ``benchmarks/distributed.py``)."""

    def __init__(self, group: Group, model: Any, images: Sequence[Any], evaluate: Callable,
                 batch_size: int, num_keypoints: int | None = None) -> None:  # fmt: skip
        self.group = group
        self.indices = frozenset(group.shard(len(images), batch_size))
        self.images = _RecordingImages(images)
        self.model = _ShardModel(self, model)
        self.num_keypoints = int(
            num_keypoints if num_keypoints is not None else getattr(model, "num_keypoints", 0)
        )
        self._evaluate = evaluate
        self.error: BaseException | None = None
        self._round = 0

    def evaluate(self, preds: Sequence[Prediction]) -> Mapping[str, Any]:
        self._round += 1
        n = len(self.images)

        def local() -> bytes:
            if self.error is not None:
                raise self.error
            if len(preds) != n:
                raise DistributedError(f"the sweep returned {len(preds)} predictions for {n}")
            return pack_predictions([(i, preds[i]) for i in sorted(self.indices)])

        payloads = self.group.gather_outcomes(f"corruption sweep {self._round}", local)
        merged, _ = merge_shards(payloads, list(range(n)))
        return self.group.on_main(
            f"corruption metrics {self._round}", lambda: self._evaluate(merged)
        )
