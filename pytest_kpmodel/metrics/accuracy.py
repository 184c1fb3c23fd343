"""The run's COCO evaluation, its baseline's, and the AP lost to lower precision.

Glue between ``KpSession`` (predictions, card, dataset) and ``metrics.evaluate``; the metric
definitions and their exactness live in ``metrics``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..errors import KpModelError
from .evaluation import evaluate


def evaluate_predictions(session, predictions, *, confidence: float = 0.95, image_ids=None,
                         analyses: bool = True):  # fmt: skip
    """``metrics.evaluate`` of a ``PredictionSet`` against the run's ground truth."""
    ds, ks = session.dataset, session.card.keypoints
    metrics = evaluate(
        ds.coco,
        predictions.to_result_arrays(ds.category_id),
        sigmas=ks.sigmas,
        flip_index=ks.flip_index(),
        names=ks.names,
        image_ids=image_ids,
        engine=session.settings.metrics_engine,
        seed=session.settings.seed,
        confidence=confidence,
        bootstrap=200 if analyses else 0,
        per_keypoint=analyses,
        error_analysis=analyses,
        allow_box_area=session.allow_box_area,
    )
    metrics.dataset["notes"][:0] = ds.notes  # how the file was read (data_layouts)
    return metrics


def variant_metrics(session, predictions) -> dict[str, Any]:
    """A parity variant's box and keypoint metrics on the images it predicted (no analyses)."""
    m = evaluate_predictions(session, predictions, image_ids=predictions.image_ids,
                             analyses=False)  # fmt: skip
    return {"bbox": m.bbox.to_json(), "keypoints": m.keypoints.to_json()}


def check_session_ground_truth(session) -> list[str]:
    """The run's evaluation set checked whole, and against the card's keypoints, before
    anything predicts; its notes (how the file was read, then the checks' warnings)."""
    from ..errors import DatasetError
    from .inputs import check_ground_truth

    ds, card = session.dataset, session.card
    try:
        notes = check_ground_truth(ds.coco, card.keypoints, allow_box_area=session.allow_box_area,
                                   keypoints_from=f"the card's [keypoints] ({card.path})")  # fmt: skip
    except DatasetError as exc:
        raise DatasetError(f"{ds.annotations_path}: {exc}") from None
    return ds.notes + notes


@dataclass
class PrecisionDrop:
    precision: str
    drops: dict[str, float] = field(default_factory=dict)  # "box AP" -> fp32 AP - variant AP
    values: dict[str, dict[str, float]] = field(default_factory=dict)
    skipped: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"precision": self.precision, "drops": self.drops, "values": self.values,
                "skipped": self.skipped}  # fmt: skip


BF16Skip = Callable[[Any, Any], str | None]


def precision_drop(session, precision: str, bf16_skip: BF16Skip | None = None) -> PrecisionDrop:
    """AP at fp32 minus AP at ``precision`` (fp16 needs CUDA; bf16 runs on the CPU too).
    ``bf16_skip(fp32 session, bf16 session)``: why the bf16 predictions are not made here (the
    session's emulated-bf16 guard, ``bench.precision.emulated_bf16_drop_reason``), or None."""
    if precision not in ("fp16", "bf16"):
        raise KpModelError(f"precision drop: {precision!r} is not fp16 or bf16")
    if precision == "fp16" and not session.device.startswith("cuda"):
        return PrecisionDrop(
            precision, skipped=f"fp16 needs a CUDA device; this run uses {session.device}"
        )
    reference = session.variant(precision="fp32")
    variant = session.variant(precision=precision)
    if precision == "bf16" and bf16_skip is not None:
        reason = bf16_skip(reference, variant)
        if reason:
            return PrecisionDrop(precision, skipped=reason)
    ref, var = reference.eval_at(None), variant.eval_at(None)
    out = PrecisionDrop(precision)
    for label, section in (("box AP", "bbox"), ("keypoints AP", "keypoints")):
        a, b = getattr(ref, section), getattr(var, section)
        if a is None or b is None:
            continue
        out.drops[label] = float(a["AP"] - b["AP"])
        out.values[label] = {"fp32": float(a["AP"]), precision: float(b["AP"])}
    return out
