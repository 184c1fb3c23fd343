"""Per-stage milliseconds of a torchvision ``GeneralizedRCNN`` (Faster/Mask/Keypoint R-CNN).

Stages, each bracketed by forward pre/post hooks with ``sync()`` before every timestamp:

- ``preprocess``: ``model.transform`` (normalise, resize, batch into one padded tensor);
- ``backbone``: ``model.backbone`` (trunk + FPN);
- ``rpn``: ``model.rpn`` (anchors, objectness, proposal decoding, NMS);
- ``roi_heads``: ``model.roi_heads`` (box head, box NMS, keypoint head and heatmap decoding);
- ``postprocess``: ``model.transform.postprocess`` (boxes/keypoints back to input pixels),
  wrapped for the duration as an instance attribute (it is a method, not a module);
- ``other``: the call's total minus the stages (Python glue, ``Prediction`` conversion).

Any other model (TorchScript, ONNX Runtime, a full torch.export program, a ``predict`` object)
is opaque: one stage, ``model``, which is the timed call itself.

Where the stages are timed (``BenchSettings.stage_iters``; ``measure`` decides):

- **during the timed calls** (``TimedStages``, no extra forward pass): opaque models on any
  device, and R-CNN models on devices whose ``sync()`` is a no-op (the CPU), where a hook costs
  two ``perf_counter()`` reads and a Python call, microseconds against a call of milliseconds;
- **in a separate pass** of ``stage_iters`` calls after the timed loop (``measure_stages``):
  R-CNN models on CUDA, where every stamp needs a ``synchronize()`` that would serialise the
  timed calls and leak into the latency figures, or when ``stage_iters`` asks for a pass.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from contextlib import nullcontext
from typing import Any

STAGES = ("preprocess", "backbone", "rpn", "roi_heads", "postprocess")
_MODULE_STAGES = (("preprocess", "transform"), ("backbone", "backbone"), ("rpn", "rpn"),
                  ("roi_heads", "roi_heads"))  # fmt: skip


def detection_module(model: Any):
    """The hookable torchvision detector behind ``model`` (a ``KeypointModel``), or None."""
    import torch

    module = getattr(model, "module", model)
    if not isinstance(module, torch.nn.Module) or isinstance(module, torch.jit.ScriptModule):
        return None
    parts = [getattr(module, name, None) for _, name in _MODULE_STAGES]
    if not all(isinstance(p, torch.nn.Module) for p in parts):
        return None
    if isinstance(module.transform, torch.jit.ScriptModule):
        return None
    if not callable(getattr(module.transform, "postprocess", None)):
        return None
    return module


class StageTimer:
    """Context manager installing the stage hooks on ``module``; ``take()`` returns and clears
    the milliseconds accumulated per stage since the last ``take()``."""

    def __init__(self, module, sync: Callable[[], None], clock: Callable[[], float]) -> None:
        self.module = module
        self.sync = sync
        self.clock = clock
        self._open: dict[str, float] = {}
        self._acc: dict[str, float] = defaultdict(float)
        self._handles: list[Any] = []
        self._had_instance_postprocess = False
        self._previous_postprocess = None

    def _stamp(self) -> float:
        self.sync()
        return self.clock()

    def _start(self, stage: str) -> None:
        self._open[stage] = self._stamp()

    def _stop(self, stage: str) -> None:
        t = self._stamp()
        start = self._open.pop(stage, None)
        if start is not None:
            self._acc[stage] += (t - start) * 1000.0

    def __enter__(self) -> StageTimer:
        for stage, name in _MODULE_STAGES:
            sub = getattr(self.module, name)
            self._handles.append(sub.register_forward_pre_hook(self._pre(stage)))
            self._handles.append(sub.register_forward_hook(self._post(stage), always_call=True))
        transform = self.module.transform
        self._had_instance_postprocess = "postprocess" in vars(transform)
        original = transform.postprocess
        self._previous_postprocess = original

        def postprocess(*args, **kwargs):
            self._start("postprocess")
            try:
                return original(*args, **kwargs)
            finally:
                self._stop("postprocess")

        transform.postprocess = postprocess
        return self

    def _pre(self, stage: str):
        def hook(_module, _args):
            self._start(stage)

        return hook

    def _post(self, stage: str):
        def hook(_module, _args, _output):
            self._stop(stage)

        return hook

    def __exit__(self, *exc) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()
        transform = self.module.transform
        if self._had_instance_postprocess:
            transform.postprocess = self._previous_postprocess
        else:
            vars(transform).pop("postprocess", None)
        self._open.clear()

    def take(self) -> dict[str, float]:
        out = {s: self._acc.get(s, 0.0) for s in STAGES}
        self._acc.clear()
        return out


def median(values: list[float]) -> float:
    s = sorted(values)
    n = len(s)
    if n == 0:
        return 0.0
    mid = n // 2
    return s[mid] if n % 2 else (s[mid - 1] + s[mid]) / 2.0


def measure_stages(
    model,
    batches,
    iters: int,
    sync: Callable[[], None],
    clock: Callable[[], float],
    step: Callable[[Any], Any],
    on_call: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Median milliseconds per stage over ``iters`` calls of ``step`` (batches cycled);
    ``on_call(1)`` (progress) before each call, outside its interval.

    Returns ``{"stages_ms": {...}, "stage_total_ms": median total, "stage_iters": n,
    "stage_kind": "torchvision-rcnn" | "opaque", "stage_pass": "separate"}``; stages sum to
    about the total (the ``other`` stage is the per-call remainder).
    """
    module = detection_module(model)
    per_stage: dict[str, list[float]] = defaultdict(list)
    totals: list[float] = []
    tick = on_call or (lambda _n: None)
    with StageTimer(module, sync, clock) if module is not None else nullcontext() as timer:
        for i in range(iters):
            tick(1)
            sync()
            t0 = clock()
            step(batches[i % len(batches)])
            sync()
            total = (clock() - t0) * 1000.0
            totals.append(total)
            if timer is not None:
                stages = timer.take()
                stages["other"] = max(0.0, total - sum(stages.values()))
                for k, v in stages.items():
                    per_stage[k].append(v)
    return {
        "stages_ms": {k: median(v) for k, v in per_stage.items()}
        if module is not None
        else {"model": median(totals)},
        "stage_total_ms": median(totals),
        "stage_iters": iters,
        "stage_kind": "torchvision-rcnn" if module is not None else "opaque",
        "stage_pass": "separate",
    }


class TimedStages:
    """Stage times taken during the timed calls themselves (no extra forward pass).

    ``start()`` after warm-up (drops what warm-up accumulated), ``record(total_ms)`` after each
    timed call with that call's duration; ``to_json()`` has ``measure_stages``'s keys, with
    ``stage_pass="timed"``. For an opaque model the one stage ``model`` is the timed call."""

    def __init__(self, model, sync: Callable[[], None], clock: Callable[[], float]) -> None:
        module = detection_module(model)
        self.timer = StageTimer(module, sync, clock) if module is not None else None
        self.per_stage: dict[str, list[float]] = defaultdict(list)
        self.totals: list[float] = []

    def __enter__(self) -> TimedStages:
        if self.timer is not None:
            self.timer.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self.timer is not None:
            self.timer.__exit__(*exc)

    def start(self) -> None:
        if self.timer is not None:
            self.timer.take()

    def record(self, total_ms: float) -> None:
        self.totals.append(total_ms)
        if self.timer is None:
            return
        stages = self.timer.take()
        stages["other"] = max(0.0, total_ms - sum(stages.values()))
        for k, v in stages.items():
            self.per_stage[k].append(v)

    def to_json(self) -> dict[str, Any]:
        total = median(self.totals)
        rcnn = self.timer is not None
        return {
            "stages_ms": {k: median(v) for k, v in self.per_stage.items()}
            if rcnn
            else {"model": total},
            "stage_total_ms": total,
            "stage_iters": len(self.totals),
            "stage_kind": "torchvision-rcnn" if rcnn else "opaque",
            "stage_pass": "timed",
        }
