"""The parity table: one row per variant (status, speed, accuracy, agreement with fp32),
JSON-serialisable (``to_json``, the report's ``parity`` section) and printable (``format``)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any


@dataclass
class ParityRow:
    variant: str
    status: str  # ok | skipped | failed
    reason: str | None = None
    device: str | None = None
    precision: str | None = None
    latency_ms_p50: float | None = None
    latency_ms_p90: float | None = None
    fps: float | None = None  # throughput FPS
    fps_latency: float | None = None
    box_ap: float | None = None
    kp_ap: float | None = None
    mean_oks: float | None = None  # vs the fp32 reference (1.0 for fp32 itself)
    oks50_fraction: float | None = None
    detections: int | None = None  # over the evaluation set
    prepare_s: float | None = None  # export / build time
    seconds: float | None = None  # the whole variant: build, predictions, timed calls
    # images predicted + benchmark calls (warm-up, timed, stage pass): model calls at batch 1
    forward_passes: int | None = None
    # why the speed columns are empty on an ok row (bf16 emulated on this CPU); None: timed, or
    # the run measured no speed at all
    speed_skipped: str | None = None
    notes: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)
    bench: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {k: _jsonable(v) for k, v in self.__dict__.items()}


@dataclass
class ParityTable:
    reference: str
    device: str
    images: int
    settings: dict[str, Any]
    rows: list[ParityRow]

    def row(self, variant: str) -> ParityRow:
        for r in self.rows:
            if r.variant == variant:
                return r
        raise KeyError(variant)

    def to_json(self) -> dict[str, Any]:
        return {
            "reference": self.reference,
            "device": self.device,
            "images": self.images,
            "settings": _jsonable(self.settings),
            "rows": [r.to_json() for r in self.rows],
        }

    def format(self) -> str:
        head = ("variant", "status", "p50 ms", "FPS", "box AP", "kp AP", "OKS vs fp32", "note")
        lines = [head]
        for r in self.rows:
            note = r.reason if r.status != "ok" else r.notes
            lines.append(
                (
                    r.variant,
                    r.status,
                    _fmt(r.latency_ms_p50, 1),
                    _fmt(r.fps, 2),
                    _fmt(r.box_ap, 4),
                    _fmt(r.kp_ap, 4),
                    _fmt(r.mean_oks, 4),
                    (note or "")[:100],
                )
            )
        widths = [max(len(line[i]) for line in lines) for i in range(len(head) - 1)]
        out = []
        for line in lines:
            cells = [c.ljust(w) for c, w in zip(line[:-1], widths, strict=True)]
            out.append("  ".join([*cells, line[-1]]).rstrip())
        return "\n".join(out)


def _fmt(x: float | None, digits: int) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def _jsonable(v: Any) -> Any:
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_jsonable(x) for x in v]
    if v is None or isinstance(v, str | int | bool):
        return v
    if hasattr(v, "item"):
        return _jsonable(v.item())
    return str(v)
