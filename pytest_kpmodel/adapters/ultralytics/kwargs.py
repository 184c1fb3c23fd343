"""The card's ``[model.kwargs]`` for ``format = "ultralytics"`` (and its ONNX ``yolo-pose``
layout): checked, with Ultralytics' ``val`` defaults filled in. What each key means: the
``adapter`` module's docstring."""

from __future__ import annotations

import math
from typing import Any

from ...errors import AdapterError

KWARGS = ("imgsz", "letterbox", "conf", "iou", "max_det")
DEFAULTS = {"letterbox": "val", "conf": 0.001, "iou": 0.7, "max_det": 300}


def settings(card, checkpoint: dict[str, Any] | None, stride: int) -> dict[str, Any]:
    """The card's ``[model.kwargs]`` checked, with the defaults filled in."""
    from .preprocess import MODES

    kwargs = dict(card.model.kwargs)
    where = f"{card.path}: [model.kwargs]"
    unknown = sorted(set(kwargs) - set(KWARGS))
    if unknown:
        raise AdapterError(
            f"{where} unknown key {unknown[0]!r} for format 'ultralytics'; "
            f"allowed: {', '.join(KWARGS)}"
        )
    out: dict[str, Any] = {**DEFAULTS, **kwargs}
    imgsz = out.get("imgsz")
    if imgsz is None:
        imgsz = _checkpoint_imgsz(checkpoint)
    if isinstance(imgsz, bool) or not isinstance(imgsz, int) or imgsz <= 0:
        raise AdapterError(f"{where} imgsz must be a positive integer, got {imgsz!r}")
    out["imgsz"] = max(math.ceil(imgsz / stride) * stride, stride)
    if out["letterbox"] not in MODES:
        raise AdapterError(
            f"{where} letterbox must be one of {', '.join(MODES)}, got {out['letterbox']!r}"
        )
    for key in ("conf", "iou"):
        v = out[key]
        if isinstance(v, bool) or not isinstance(v, int | float) or not 0 <= v <= 1:
            raise AdapterError(f"{where} {key} must be a number in [0, 1], got {v!r}")
        out[key] = float(v)
    md = out["max_det"]
    if isinstance(md, bool) or not isinstance(md, int) or md <= 0:
        raise AdapterError(f"{where} max_det must be a positive integer, got {md!r}")
    return out


def _checkpoint_imgsz(checkpoint: dict[str, Any] | None) -> Any:
    if checkpoint is None:
        return 640
    for source in (checkpoint.get("train_args"), getattr(model_of(checkpoint), "args", None)):
        if isinstance(source, dict) and "imgsz" in source:
            value = source["imgsz"]
            if isinstance(value, list | tuple) and value:
                value = max(value)  # Ultralytics validates at the largest side
            return value
    return 640


def model_of(checkpoint: dict[str, Any]) -> Any:
    return checkpoint.get("ema") or checkpoint.get("model")
