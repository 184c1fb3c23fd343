"""Deployment parity: the same model as fp32, bf16, fp16, ONNX Runtime and ``torch.export``,
speed and accuracy side by side (like Ultralytics' benchmark table), each variant compared with
the fp32 eager model's predictions by OKS.

``run(model, card, dataset, variants, evaluate_fn, settings) -> ParityTable``; the table is
JSON-serialisable (``to_json``) and prints as text (``format``). Per variant:

- ``fp32`` / ``bf16`` / ``fp16``: the eager model under ``torch.autocast`` (bf16 runs on the CPU;
  fp16 needs CUDA, else skipped with the reason);
- ``onnx``: ``export.export_onnx`` (TorchScript-based exporter, dynamic image size) run by
  ONNX Runtime on the model's device (skipped with the exporter's or runtime's reason);
- ``exported``: ``export.export_program`` — for torchvision R-CNN models the dense parts as
  ``torch.export`` programs (round-tripped through a ``.pt2`` archive) inside the eager
  detection glue, since the whole detector cannot be exported (see ``export.py``).

Accuracy: ``evaluate_fn(PredictionSet) -> dict`` (the lead's COCO evaluation; ``box_ap`` and
``kp_ap`` are read from ``{"bbox": {"AP"}, "keypoints": {"AP"}}`` or flat ``box_ap``/``kp_ap``
keys) on the whole ``dataset``. Agreement with fp32: per image, fp32 detections (by descending
score, score >= ``min_score``) are matched greedily to the variant's same-label detections by
OKS with the card's sigmas (scale: the fp32 box's area); ``mean_oks`` averages the matched OKS
over fp32 detections (0 for an fp32 detection left without a partner), ``oks50_fraction`` is the
share with OKS >= 0.5.
"""

from __future__ import annotations

import math
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..errors import KpModelError

DEFAULT_VARIANTS = ("fp32", "bf16", "fp16", "onnx", "exported")
PRECISION_VARIANTS = ("fp32", "bf16", "fp16")


# -- OKS ------------------------------------------------------------------------------------------
def match_oks(ref, other, sigmas, min_score: float = 0.0) -> list[float]:
    """Greedy OKS matching of ``ref``'s detections (``Prediction``, by descending score) to
    ``other``'s unmatched detections of the same label; the matched OKS per ``ref`` detection
    (0.0 when nothing is left to match)."""
    import torch

    keep = (ref.scores >= min_score).nonzero().flatten()
    if keep.numel() == 0:
        return []
    order = keep[torch.argsort(ref.scores[keep], descending=True, stable=True)]
    boxes = ref.boxes[order].double()
    areas = (boxes[:, 2] - boxes[:, 0]).clamp(min=0) * (boxes[:, 3] - boxes[:, 1]).clamp(min=0)
    from ..robustness.oks import oks_matrix

    m = oks_matrix(ref.keypoints[order].cpu(), areas.cpu(), other.keypoints.cpu(), sigmas)
    if m.shape[1]:
        same = ref.labels[order].cpu()[:, None] == other.labels.cpu()[None, :]
        m = torch.where(same, m, torch.full_like(m, -1.0))
    taken = torch.zeros(m.shape[1], dtype=torch.bool)
    out = []
    for i in range(m.shape[0]):
        row = m[i].masked_fill(taken, -1.0) if m.shape[1] else m[i]
        if row.numel() == 0:
            out.append(0.0)
            continue
        j = int(torch.argmax(row))
        if row[j] < 0:
            out.append(0.0)
            continue
        taken[j] = True
        out.append(float(row[j]))
    return out


def compare_predictions(reference, variant, sigmas, min_score: float = 0.0) -> dict[str, Any]:
    """OKS agreement of two ``PredictionSet`` s over the same images (see the module doc)."""
    if reference.image_ids != variant.image_ids:
        raise KpModelError("parity: the two prediction sets cover different images")
    values: list[float] = []
    n_ref = n_var = 0
    for r, v in zip(reference.predictions, variant.predictions, strict=True):
        values += match_oks(r, v, sigmas, min_score)
        n_ref += len(r)
        n_var += len(v)
    return {
        "mean_oks": sum(values) / len(values) if values else None,
        "oks50_fraction": sum(x >= 0.5 for x in values) / len(values) if values else None,
        "compared_detections": len(values),
        "reference_detections": n_ref,
        "variant_detections": n_var,
    }


# -- table ------------------------------------------------------------------------------------------
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


def _pick(metrics: dict[str, Any], flat: str, nested: tuple[str, str]) -> float | None:
    if isinstance(metrics.get(flat), int | float):
        return float(metrics[flat])
    sub = metrics.get(nested[0])
    if isinstance(sub, dict) and isinstance(sub.get(nested[1]), int | float):
        return float(sub[nested[1]])
    return None


# -- variants -----------------------------------------------------------------------------------------
def build_variant(model, card, variant: str, example_images: list, workdir: Path):
    """(KeypointModel, precision, notes) for ``variant``; raises ``KpModelError`` subclasses
    (``BenchUnavailable``, ``ExportUnavailable``, ``AdapterError``) with the skip reason."""
    from ..adapters.options import LoadOptions
    from ..adapters.torch_module import TorchDetectionModel
    from . import export
    from .precision import with_precision

    if variant in PRECISION_VARIANTS:
        return (
            with_precision(model, variant),
            variant,
            "eager, torch.autocast" if variant != "fp32" else "eager",
        )
    device = str(getattr(model, "device", "cpu"))
    k = model.num_keypoints
    name = getattr(model, "name", "")
    if variant == "onnx":
        from ..adapters.onnx_export import ONNX_OPSET
        from ..adapters.onnx_format import OnnxDetectionModel
        from ..security.guarded_model import GuardedModel

        # a family adapter that exports itself in its own layout (ultralytics: yolo-pose)
        inner = model.inner if isinstance(model, GuardedModel) else model
        own = getattr(inner, "onnx_variant", None)
        if own is not None:
            vmodel, notes = own(workdir, example_images)
            return vmodel, "fp32", notes

        path = export.export_onnx(model, workdir / "model.onnx", example_images[0])
        return (
            OnnxDetectionModel(path, device, k, name),
            "fp32",
            f"TorchScript-based exporter, opset {ONNX_OPSET}, dynamic H/W; onnxruntime",
        )
    if variant == "exported":
        from ..adapters.exported_format import program_detector
        from ..adapters.pt2_archive import FULL_PROGRAM, load_programs, save_programs

        programs = export.export_program(model, example_images)
        loaded = load_programs(save_programs(programs, workdir / "model.pt2"))
        module = program_detector(loaded, lambda: export.eager_module(model), device)
        if set(loaded) == {FULL_PROGRAM}:
            notes = "whole model exported"
        else:
            notes = "torch.export of " + ", ".join(sorted(loaded)) + "; detection glue eager"
        return TorchDetectionModel(module, LoadOptions(device=device), k, name), "fp32", notes
    raise KpModelError(f"parity: unknown variant {variant!r}; known: {', '.join(DEFAULT_VARIANTS)}")


def run(
    model,
    card,
    dataset,
    variants: Sequence[str] = DEFAULT_VARIANTS,
    evaluate_fn: Callable[[Any], dict[str, Any]] | None = None,
    settings=None,
    *,
    workdir: str | Path | None = None,
    batch_size: int = 1,
    min_score: float = 0.0,
    measure_speed: bool = True,
) -> ParityTable:
    """The parity table of ``model`` (a ``KeypointModel`` on its device) over ``dataset``.

    ``settings``: ``BenchSettings`` for the speed columns (its precision is replaced by
    each variant's); ``card``: for the OKS sigmas (``card.keypoints.sigmas``; COCO's when None).
    Variants that cannot run here are rows with ``status="skipped"`` and the reason; a variant
    that fails unexpectedly is ``status="failed"`` with the error, and the others still run.
    """
    from ..data import load_images
    from ..keypoints import COCO17
    from ..predictions import predict_dataset
    from .measure import prepare_images
    from .precision import with_precision
    from .settings import BenchSettings

    settings = settings or BenchSettings()
    sigmas = card.keypoints.sigmas if card is not None else COCO17.sigmas
    unknown = [v for v in variants if v not in DEFAULT_VARIANTS]
    if unknown:
        raise KpModelError(
            f"parity: unknown variant(s) {', '.join(unknown)}; known: {', '.join(DEFAULT_VARIANTS)}"
        )
    reference_model = with_precision(model, "fp32")
    reference = predict_dataset(reference_model, dataset, batch_size)
    examples = prepare_images(load_images(dataset, [0, min(1, len(dataset) - 1)]), None)

    rows = []
    with tempfile.TemporaryDirectory(prefix="kp-parity-") as tmp:
        base = Path(workdir) if workdir is not None else Path(tmp)
        for variant in variants:
            rows.append(
                _run_variant(
                    model,
                    card,
                    dataset,
                    variant,
                    examples,
                    base / variant,
                    reference,
                    evaluate_fn,
                    settings,
                    batch_size,
                    sigmas,
                    min_score,
                    measure_speed,
                )  # fmt: skip
            )
    return ParityTable(
        reference="fp32",
        device=str(getattr(model, "device", "cpu")),
        images=len(dataset),
        settings=settings.to_json(),
        rows=rows,
    )


def _run_variant(
    model, card, dataset, variant, examples, workdir, reference, evaluate_fn, settings,
    batch_size, sigmas, min_score, measure_speed,
) -> ParityRow:  # fmt: skip
    from ..predictions import predict_dataset
    from .measure import measure

    row = ParityRow(variant=variant, status="ok", device=str(getattr(model, "device", "cpu")))
    t0 = time.perf_counter()
    try:
        workdir.mkdir(parents=True, exist_ok=True)
        vmodel, precision, notes = build_variant(model, card, variant, examples, workdir)
    except KpModelError as exc:
        row.status, row.reason = "skipped", str(exc)
        return row
    except Exception as exc:  # noqa: BLE001 - one variant's failure must not hide the others
        row.status, row.reason = "failed", f"{type(exc).__name__}: {exc}"
        return row
    row.prepare_s = time.perf_counter() - t0
    row.precision, row.notes = precision, notes
    row.device = str(getattr(vmodel, "device", row.device))
    try:
        preds = reference if variant == "fp32" else predict_dataset(vmodel, dataset, batch_size)
        row.detections = sum(len(p) for p in preds.predictions)
        agreement = compare_predictions(reference, preds, sigmas, min_score)
        row.mean_oks = agreement["mean_oks"]
        row.oks50_fraction = agreement["oks50_fraction"]
        if evaluate_fn is not None:
            row.metrics = dict(evaluate_fn(preds))
            row.box_ap = _pick(row.metrics, "box_ap", ("bbox", "AP"))
            row.kp_ap = _pick(row.metrics, "kp_ap", ("keypoints", "AP"))
        if measure_speed:
            result = measure(vmodel, dataset, replace(settings, precision=precision))
            row.bench = result.to_json()
            row.latency_ms_p50 = result.latency.p50
            row.latency_ms_p90 = result.latency.p90
            row.fps = result.fps
            row.fps_latency = result.latency.fps_latency
    except KpModelError as exc:
        row.status, row.reason = "skipped", str(exc)
    except Exception as exc:  # noqa: BLE001
        row.status, row.reason = "failed", f"{type(exc).__name__}: {exc}"
    return row
