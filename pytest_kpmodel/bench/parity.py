"""Deployment parity: the same model as fp32, bf16, fp16, ONNX Runtime and ``torch.export``,
speed and accuracy side by side (like Ultralytics' benchmark table), each variant compared with
the fp32 eager model's predictions by OKS.

``run(model, card, dataset, variants, evaluate_fn, settings) -> ParityTable`` (see
``parity_table``). Per variant:

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

Emulated bf16: on a CPU without bf16 in hardware (no AVX512-BF16 or AMX; ``precision.
bf16_emulated``) autocast's bf16 convolutions run on a naive GEMM, 27x to 170x their fp32 time
(a keypoint R-CNN R50-FPN did not finish one 288x384 image in 16 min; fp32: 10-27 s), and timing
them says nothing about bf16 where one would deploy it. There the bf16 row is not timed: it
predicts the images (its AP and OKS against fp32 do not depend on the emulation), ``speed_
skipped`` and the note say "bf16 is emulated on this CPU (no AVX512-BF16/AMX): speed not
measured", and it makes ``num_images`` forward passes instead of ``num_images + warmup x shapes
+ iters``. Its predictions are projected first, as the fp32 reference's time times
``precision.emulated_bf16_slowdown()`` (one small convolution in both precisions): over
``EMULATED_BF16_BUDGET_S`` the row is skipped with the projection as its reason.
``run(..., run_emulated_bf16=True)`` runs and times it regardless.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..errors import KpModelError
from ..progress import say, step
from .parity_table import ParityRow, ParityTable
from .precision import EMULATED_BF16_BUDGET_S  # noqa: F401 - the budget's documented name

DEFAULT_VARIANTS = ("fp32", "bf16", "fp16", "onnx", "exported")
PRECISION_VARIANTS = ("fp32", "bf16", "fp16")
# What kp_parity measures when the kp_bench(...) of its tests does not say: every variant
# predicts the first `num_images` images (accuracy columns) and is timed with `warmup` calls
# per shape and `iters` timed calls, so the run is bounded by
# variants x (num_images + warmup x shapes + iters) forward passes, known before it starts.
PARITY_DEFAULTS: Mapping[str, Any] = {"num_images": 50, "warmup": 1, "iters": 10}


def parity_settings(marker: Mapping[str, Any]):
    """``BenchSettings`` of a parity run: ``PARITY_DEFAULTS`` under the test's ``kp_bench``."""
    from .settings import BenchSettings

    return BenchSettings.from_kwargs(**{**PARITY_DEFAULTS, **marker})


@contextmanager
def library_scratch(folder: Path) -> Iterator[None]:
    """Point the libraries that write into the system temp folder on their own at ``folder``
    (removed with the run): torch.export creates ``$TMPDIR/torchinductor_$USER`` (left empty),
    ONNX Runtime writes ``$TMPDIR/.ses``. Python's own ``tempfile`` has cached its folder
    already, so only those libraries see the change; the environment is restored afterwards."""
    folder.mkdir(parents=True, exist_ok=True)
    keys = ("TMPDIR", "TORCHINDUCTOR_CACHE_DIR")
    before = {k: os.environ.get(k) for k in keys}
    tempfile.gettempdir()  # cache Python's choice before TMPDIR changes
    os.environ["TMPDIR"] = str(folder)
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(folder / "torchinductor")
    try:
        yield
    finally:
        for k, v in before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


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
    run_emulated_bf16: bool = False,
) -> ParityTable:
    """The parity table of ``model`` (a ``KeypointModel`` on its device) over ``dataset``.

    ``settings``: ``BenchSettings`` for the speed columns (its precision is replaced by
    each variant's); ``card``: for the OKS sigmas (``card.keypoints.sigmas``; COCO's when None).
    Every variant predicts all of ``dataset`` (the caller bounds it: ``parity_settings``'s
    ``num_images``) and is timed with ``settings``; each variant is one progress step.
    Variants that cannot run here are rows with ``status="skipped"`` and the reason; a variant
    that fails unexpectedly is ``status="failed"`` with the error, and the others still run.
    Whatever the exporters and runtimes write goes into ``workdir`` (a temporary folder when
    None, removed afterwards). Where the CPU emulates bf16 the bf16 row is not timed, and not
    run when projected over ``EMULATED_BF16_BUDGET_S``, unless ``run_emulated_bf16`` (see the
    module doc).
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
    name = getattr(model, "name", "") or type(model).__name__
    t0 = time.perf_counter()
    with step(f"kp_parity: the fp32 reference, predicting {len(dataset)} images with {name}",
              len(dataset)) as bar:  # fmt: skip
        reference = predict_dataset(reference_model, dataset, batch_size, progress=bar)
    reference_s = time.perf_counter() - t0
    examples = prepare_images(load_images(dataset, [0, min(1, len(dataset) - 1)]), None)

    context = _Context(model, card, dataset, examples, reference, evaluate_fn, settings,
                       batch_size, sigmas, min_score, measure_speed, reference_s,
                       run_emulated_bf16)  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="kp-parity-") as tmp:
        base = Path(workdir) if workdir is not None else Path(tmp)
        with library_scratch(base / "scratch"):
            rows = [_run_variant(context, variant, base / variant) for variant in variants]
    return ParityTable(
        reference="fp32",
        device=str(getattr(model, "device", "cpu")),
        images=len(dataset),
        settings=settings.to_json(),
        rows=rows,
    )


@dataclass(frozen=True)
class _Context:
    """What every variant is built from and compared with."""

    model: Any
    card: Any
    dataset: Any
    examples: list  # float CHW images the exporters trace with
    reference: Any  # the fp32 eager model's PredictionSet
    evaluate_fn: Callable[[Any], dict[str, Any]] | None
    settings: Any  # BenchSettings of the speed columns
    batch_size: int
    sigmas: Sequence[float]
    min_score: float
    measure_speed: bool
    reference_s: float = 0.0  # seconds the fp32 reference's predictions took
    run_emulated_bf16: bool = False


def _emulated(ctx: _Context, variant: str, device: str) -> str | None:
    """Why ``variant`` is not timed although it runs: bf16 on a CPU that emulates it."""
    from .precision import bf16_emulated

    if variant != "bf16" or ctx.run_emulated_bf16:
        return None
    return bf16_emulated(device)


def _over_budget(ctx: _Context, images: int) -> str | None:
    """The reason the emulated bf16 row is not run: its predictions projected over
    ``EMULATED_BF16_BUDGET_S``; None when they fit."""
    from .precision import emulated_bf16_over_budget

    # the reference predicted the same images in fp32
    return emulated_bf16_over_budget(
        ctx.reference_s, images, "kp_parity's", "or fewer images: kp_bench(num_images=...)"
    )


def _run_variant(ctx: _Context, variant: str, workdir: Path) -> ParityRow:
    """The row of ``variant``: skipped with the reason when it cannot run here, failed with the
    error when it breaks (the other variants still run)."""
    row = ParityRow(variant=variant, status="ok", device=str(getattr(ctx.model, "device", "cpu")))
    t0 = time.perf_counter()
    # fp32's predictions are the reference's; no dataset: a variant only built (tests)
    n = len(ctx.dataset) if variant != "fp32" and ctx.dataset is not None else 0
    # decided before the step so that its line says what will run (a precision variant runs on
    # the model's own device)
    emulated = _emulated(ctx, variant, row.device or "cpu")
    over = _over_budget(ctx, n) if emulated is not None else None
    if over is not None:
        say(f"kp_parity {variant}: not run: {over}")
        row.status, row.reason, row.seconds = "skipped", over, time.perf_counter() - t0
        return row
    speed_skip = emulated if ctx.measure_speed else None
    timed = f", then {ctx.settings.iters} timed calls" if ctx.measure_speed else ""
    if speed_skip is not None:
        timed = " (emulated bf16: not timed)"
    what = f"kp_parity {variant}: building, predicting {n} images{timed} on {row.device}"
    try:
        with step(what, n, unit="call") as bar:
            workdir.mkdir(parents=True, exist_ok=True)
            vmodel, row.precision, row.notes = build_variant(
                ctx.model, ctx.card, variant, ctx.examples, workdir
            )
            row.prepare_s = time.perf_counter() - t0
            row.device = str(getattr(vmodel, "device", row.device))
            _accuracy(ctx, row, vmodel, bar)
            if speed_skip is not None:
                row.speed_skipped = speed_skip
                row.notes = f"{speed_skip}; {row.notes}" if row.notes else speed_skip
            elif ctx.measure_speed:
                _speed(ctx, row, vmodel, bar)
    except KpModelError as exc:
        row.status, row.reason = "skipped", str(exc)
    except Exception as exc:  # noqa: BLE001 - one variant's failure must not hide the others
        row.status, row.reason = "failed", f"{type(exc).__name__}: {exc}"
    row.seconds = time.perf_counter() - t0
    if row.status == "ok":
        row.forward_passes = bar.done  # the step counted every prediction and timed call
    return row


def _accuracy(ctx: _Context, row: ParityRow, vmodel, bar) -> None:
    """Detections, agreement with fp32 and (with ``evaluate_fn``) AP of the variant."""
    from ..predictions import predict_dataset

    preds = (
        ctx.reference
        if row.variant == "fp32"
        else predict_dataset(vmodel, ctx.dataset, ctx.batch_size, progress=bar)
    )
    row.detections = sum(len(p) for p in preds.predictions)
    agreement = compare_predictions(ctx.reference, preds, ctx.sigmas, ctx.min_score)
    row.mean_oks = agreement["mean_oks"]
    row.oks50_fraction = agreement["oks50_fraction"]
    if ctx.evaluate_fn is not None:
        row.metrics = dict(ctx.evaluate_fn(preds))
        row.box_ap = _pick(row.metrics, "box_ap", ("bbox", "AP"))
        row.kp_ap = _pick(row.metrics, "kp_ap", ("keypoints", "AP"))


def _speed(ctx: _Context, row: ParityRow, vmodel, bar) -> None:
    """The speed columns: ``measure`` at the variant's precision."""
    from .measure import measure

    result = measure(vmodel, ctx.dataset, replace(ctx.settings, precision=row.precision),
                     progress=bar, time_emulated_bf16=ctx.run_emulated_bf16)  # fmt: skip
    row.bench = result.to_json()
    row.latency_ms_p50 = result.latency.p50
    row.latency_ms_p90 = result.latency.p90
    row.fps = result.fps
    row.fps_latency = result.latency.fps_latency


def parity_bench_for_run(uses) -> dict:
    """The one ``kp_bench(...)`` setting that times the variants table, from the tests that use
    ``kp_parity`` (``MarkerUse`` triples); tests that disagree: ``KpModelError`` naming them.
    Compared as text: marker values may be lists; ``BenchSettings`` checks them when used."""
    from ..marker_args import one_per_run, parse_markers

    uses = [(nodeid, args, dict(kwargs)) for nodeid, args, kwargs in uses]
    by_text = {repr(sorted(kwargs.items())): kwargs for _, _, kwargs in uses}
    chosen = one_per_run(
        "kp_parity: the variants table (timed with the test's kp_bench settings)",
        parse_markers(uses, lambda _args, kwargs: repr(sorted(kwargs.items()))),
    )
    return by_text[chosen] if chosen is not None else {}
