"""``kp_diff`` / ``kpmodel diff``: what changed in a model against its base.

``diff_cards(card, base_card)`` compares two models by their state dicts (tensor names, shapes and
values) and, where the module can be built, by parameter count and FLOPs:

* tensors **added**, **removed** and **reshaped** (same name, other shape), by name;
* per tensor and per layer (module path = tensor name without its last part) the relative weight
  change ``||a - b|| / ||b||`` (L2 over all same-shaped parameters of the layer, float64); ``None``
  where the base tensor is all zeros and the tensors differ;
* **frozen** layers: every parameter identical (``torch.equal``). When the module is known,
  buffers (BatchNorm running statistics, counters) are kept apart from parameters: a layer whose
  parameters are identical stays frozen even if its running statistics moved
  (``buffers_changed``). Without a module every state-dict tensor counts as a parameter;
* parameter totals (``module.parameters()``; without a module, the floating-point state-dict
  tensors) and FLOPs: ``torch.utils.flop_counter.FlopCounterMode`` over one forward pass in eval
  mode, on CPU, of one ``3 x 320 x 320`` image drawn from ``torch.rand`` with a fixed seed. A
  detector's FLOPs depend on how many proposals and detections the heads see, so the number is
  only comparable between runs on the same input and seed; custom ops (``torchvision::roi_align``,
  NMS) are not counted;
* whether the card's ``[provenance] modifications`` mention what changed (see
  :mod:`.modifications`).

Weights are read with ``adapters.state_dict.read_checked`` (security scan first, then
safetensors or ``torch.load(weights_only=True)``) and the module is built with
``adapters.builders.build_module(card)``. Formats without a state dict on disk (``torchscript``,
``python``, ``exported``) are loaded through ``adapters.load_model`` and diffed by the loaded
module's ``state_dict()``; that runs the model's code, so it needs ``allow_code=True``. The
``detectron2`` and ``ultralytics`` families are read by their adapters (no model code runs);
``onnx`` is diffed by its graph's initializers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..card import ModelCard, load_card
from ..errors import KpModelError
from ..findings import Finding
from .diff_text import render_diff
from .modifications import component, modification_findings

STATE_DICT_FORMATS = ("safetensors", "pytorch")
CODE_LOADED_FORMATS = ("torchscript", "python", "exported")
FLOPS_INPUT = (3, 320, 320)
FLOPS_SEED = 0


@dataclass(frozen=True)
class TensorChange:
    name: str
    status: str  # added | removed | reshaped | changed | frozen
    shape: tuple[int, ...] | None  # in the model
    base_shape: tuple[int, ...] | None
    rel_change: float | None = None  # ||a-b|| / ||b|| for same-shaped tensors
    kind: str = "parameter"  # parameter | buffer

    @property
    def layer(self) -> str:
        return self.name.rpartition(".")[0] or self.name

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "shape": list(self.shape) if self.shape is not None else None,
            "base_shape": list(self.base_shape) if self.base_shape is not None else None,
            "rel_change": _json_float(self.rel_change),
            "kind": self.kind,
        }


@dataclass(frozen=True)
class LayerChange:
    name: str
    status: str  # added | removed | reshaped | changed | frozen
    tensors: int
    params: int  # elements of its parameters in the model
    base_params: int
    rel_change: float | None  # over its same-shaped parameters
    buffers_changed: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "tensors": self.tensors,
            "params": self.params,
            "base_params": self.base_params,
            "rel_change": _json_float(self.rel_change),
            "buffers_changed": self.buffers_changed,
        }


@dataclass
class Side:
    """One model of the comparison: where it came from and what was measured on it."""

    card: ModelCard
    params: int | None = None
    flops: int | None = None
    note: str = ""  # why params/flops are missing, when they are

    def to_json(self) -> dict[str, Any]:
        m = self.card.model
        return {
            "name": m.name,
            "version": m.version,
            "card": str(self.card.path),
            "format": m.format,
            "weights": str(m.weights) if m.weights else None,
            "sha256": m.sha256,
            "params": self.params,
            "flops": self.flops,
            "note": self.note,
        }


@dataclass
class ModelDiff:
    model: Side
    base: Side
    tensors: list[TensorChange]
    layers: list[LayerChange]
    param_kinds_known: bool
    flops_input: tuple[int, ...] = FLOPS_INPUT
    flops_seed: int = FLOPS_SEED
    norms: dict[str, tuple[float, float]] = field(default_factory=dict, repr=False)
    _findings: list[Finding] = field(default_factory=list)

    # -- views -----------------------------------------------------------------------------------
    def by_status(self, status: str) -> list[TensorChange]:
        return [t for t in self.tensors if t.status == status]

    @property
    def added(self) -> list[TensorChange]:
        return self.by_status("added")

    @property
    def removed(self) -> list[TensorChange]:
        return self.by_status("removed")

    @property
    def reshaped(self) -> list[TensorChange]:
        return self.by_status("reshaped")

    @property
    def changed(self) -> list[TensorChange]:
        return self.by_status("changed")

    @property
    def frozen_layers(self) -> list[str]:
        return [layer.name for layer in self.layers if layer.status == "frozen"]

    def layer(self, name: str) -> LayerChange | None:
        return next((layer for layer in self.layers if layer.name == name), None)

    def tensor(self, name: str) -> TensorChange | None:
        return next((t for t in self.tensors if t.name == name), None)

    @property
    def param_delta(self) -> int | None:
        if self.model.params is None or self.base.params is None:
            return None
        return self.model.params - self.base.params

    def summary(self) -> dict[str, int]:
        counts = {s: 0 for s in ("added", "removed", "reshaped", "changed", "frozen")}
        for t in self.tensors:
            counts[t.status] += 1
        counts["frozen_layers"] = len(self.frozen_layers)
        counts["layers"] = len(self.layers)
        return counts

    def components(self) -> list[dict[str, Any]]:
        """Per component (first one or two parts of the names): counts, params, rel. change."""
        groups: dict[str, dict[str, Any]] = {}
        for layer in self.layers:
            key = component(layer.name)
            g = groups.setdefault(
                key,
                {"name": key, "layers": 0, "params": 0, "base_params": 0, "added": 0,
                 "removed": 0, "reshaped": 0, "changed": 0, "frozen": 0},
            )  # fmt: skip
            g["layers"] += 1
            g["params"] += layer.params
            g["base_params"] += layer.base_params
            g[layer.status] += 1
        for key, g in groups.items():
            num, den = self.norms.get(key, (0.0, 0.0))
            same_shaped = any(
                layer.rel_change is not None
                for layer in self.layers
                if component(layer.name) == key
            )
            g["rel_change"] = _json_float(_ratio(num, den)) if same_shaped else None
        return list(groups.values())

    def findings(self) -> list[Finding]:
        return list(self._findings)

    # -- output ----------------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.model.to_json(),
            "base": self.base.to_json(),
            "summary": self.summary(),
            "parameters": {
                "model": self.model.params,
                "base": self.base.params,
                "delta": self.param_delta,
                "counted": "module parameters"
                if self.param_kinds_known
                else "floating-point state-dict tensors",
            },
            "flops": {
                "model": self.model.flops,
                "base": self.base.flops,
                "input": list(self.flops_input),
                "seed": self.flops_seed,
                "note": "FlopCounterMode, one forward pass in eval mode on CPU; a detector's "
                "FLOPs depend on its detections, so compare only on the same input and seed",
            },
            "added": [{"name": t.name, "shape": list(t.shape or ())} for t in self.added],
            "removed": [{"name": t.name, "shape": list(t.base_shape or ())} for t in self.removed],
            "reshaped": [
                {
                    "name": t.name,
                    "shape": list(t.shape or ()),
                    "base_shape": list(t.base_shape or ()),
                }
                for t in self.reshaped
            ],
            "frozen_layers": self.frozen_layers,
            "components": self.components(),
            "layers": [layer.to_json() for layer in self.layers],
            "tensors": [t.to_json() for t in self.tensors],
            "modifications": list(self.model.card.provenance.modifications),
            "findings": [f.to_json() for f in self._findings],
        }

    def render(self, top: int = 8) -> str:
        """A compact text table for the terminal."""
        return render_diff(self, top)


# -- building the diff ---------------------------------------------------------------------------
def diff_cards(
    card: ModelCard | str | Path,
    base: ModelCard | str | Path,
    *,
    allow_code: bool = False,
    flops: bool = True,
    input_size: tuple[int, int] = FLOPS_INPUT[1:],
    seed: int = FLOPS_SEED,
) -> ModelDiff:
    """Diff ``card``'s model (the modified one) against ``base``'s."""
    card = card if isinstance(card, ModelCard) else load_card(card)
    base = base if isinstance(base, ModelCard) else load_card(base)
    sd_a, mod_a, note_a = load_for_diff(card, allow_code=allow_code)
    sd_b, mod_b, note_b = load_for_diff(base, allow_code=allow_code)
    kinds_a = _kinds(mod_a, sd_a)
    kinds_b = _kinds(mod_b, sd_b)
    known = mod_a is not None and mod_b is not None
    tensors, layers, norms = compare_state_dicts(sd_a, sd_b, kinds_a, kinds_b, known)
    side_a = Side(card, _count_params(mod_a, sd_a), note=note_a)
    side_b = Side(base, _count_params(mod_b, sd_b), note=note_b)
    shape = (3, *input_size)
    if flops:
        for side, mod in ((side_a, mod_a), (side_b, mod_b)):
            if mod is not None:
                side.flops, why = count_flops(mod, shape, seed)
                if why:
                    side.note = (side.note + "; " if side.note else "") + why
    d = ModelDiff(side_a, side_b, tensors, layers, known, shape, seed, norms)
    d._findings = modification_findings(d)
    return d


def load_for_diff(card: ModelCard, *, allow_code: bool = False):
    """(state dict, module or None, note) for ``card``; the module is for params and FLOPs."""
    fmt = card.model.format
    if fmt in STATE_DICT_FORMATS:
        from ..adapters.state_dict import read_checked

        sd = read_checked(card.model.weights)
        try:
            from ..adapters.builders import build_module
            from ..adapters.state_dict import load_into

            module = build_module(card)
            load_into(module, sd, card)
        except KpModelError as exc:
            return sd, None, f"module not built ({exc}); no FLOPs, params from the state dict"
        order = list(module.state_dict())  # the module's order, not the file's (often sorted)
        return {k: sd[k] for k in order}, module.eval(), ""
    if fmt in ("detectron2", "ultralytics"):
        # their adapters read the .pkl/.pth/.pt safely (scan first, reviewed allow-lists) into
        # the plugin's own modules; no code of the model's runs. Ultralytics' module is the
        # fused one (Conv+BN folded) on both sides, so the two compare.
        from ..adapters import load_model
        from ..adapters.options import LoadOptions

        module = load_model(card, LoadOptions(device="cpu")).module
        return dict(module.state_dict()), module.eval(), ""
    if fmt == "onnx":
        return _onnx_initializers(card), None, "ONNX graph: its initializers, no module"
    if fmt in CODE_LOADED_FORMATS:
        if not allow_code:
            raise KpModelError(
                f"{card.path}: [model.format] {fmt!r} has no state dict on disk; diffing it loads "
                "the model and runs its code: pass allow_code=True (kpmodel diff --allow-code, "
                "pytest --kp-allow-code)"
            )
        from ..adapters import load_model
        from ..adapters.options import LoadOptions

        model = load_model(card, LoadOptions(device="cpu", allow_code=True))
        module = getattr(model, "module", model)
        if not hasattr(module, "state_dict"):
            raise KpModelError(f"{card.path}: the loaded {fmt!r} model exposes no state_dict()")
        sd = dict(module.state_dict())
        return sd, module, ""
    raise KpModelError(f"{card.path}: [model.format] {fmt!r}: no state dict to diff")


def compare_state_dicts(sd_a, sd_b, kinds_a=None, kinds_b=None, kinds_known=True):
    """(tensor changes, layer changes, per-component squared norms)."""
    tensors, sq = _compare_tensors(sd_a, sd_b, kinds_a or {}, kinds_b or {})
    layers: dict[str, list[TensorChange]] = {}
    for t in tensors:
        layers.setdefault(t.layer, []).append(t)
    out = []
    norms: dict[str, tuple[float, float]] = {}
    for name, ts in layers.items():
        params = [t for t in ts if t.kind == "parameter"] or ts
        num = sum(sq.get(t.name, (0.0, 0.0))[0] for t in params)
        den = sum(sq.get(t.name, (0.0, 0.0))[1] for t in params)
        key = component(name)
        n0, d0 = norms.get(key, (0.0, 0.0))
        norms[key] = (n0 + num, d0 + den)
        same_shaped = [t for t in params if t.status in ("changed", "frozen")]
        out.append(
            LayerChange(
                name,
                _layer_status({t.status for t in params}),
                len(ts),
                sum(math.prod(t.shape) for t in params if t.shape is not None),
                sum(math.prod(t.base_shape) for t in params if t.base_shape is not None),
                _ratio(num, den) if same_shaped else None,
                buffers_changed=kinds_known
                and any(t.kind == "buffer" and t.status != "frozen" for t in ts),
            )
        )
    return tensors, out, norms


def _compare_tensors(sd_a, sd_b, kinds_a, kinds_b):
    """Tensor changes by name (the model's order, then the base's extra names), and for
    same-shaped tensors the squared norms (||a-b||^2, ||b||^2)."""
    import torch

    tensors: list[TensorChange] = []
    sq: dict[str, tuple[float, float]] = {}
    names = list(sd_a) + [k for k in sd_b if k not in sd_a]
    for name in names:
        a, b = sd_a.get(name), sd_b.get(name)
        kind = kinds_a.get(name) or kinds_b.get(name) or "parameter"
        if b is None:
            tensors.append(TensorChange(name, "added", tuple(a.shape), None, None, kind))
        elif a is None:
            tensors.append(TensorChange(name, "removed", None, tuple(b.shape), None, kind))
        elif tuple(a.shape) != tuple(b.shape):
            tensors.append(
                TensorChange(name, "reshaped", tuple(a.shape), tuple(b.shape), None, kind)
            )
        else:
            same = torch.equal(a, b) if a.dtype == b.dtype else False
            a64, b64 = a.detach().to("cpu", torch.float64), b.detach().to("cpu", torch.float64)
            if not same and a.dtype != b.dtype:
                same = torch.equal(a64, b64)
            diff = 0.0 if same else float(torch.linalg.vector_norm(a64 - b64))
            base = float(torch.linalg.vector_norm(b64))
            rel = 0.0 if same else _ratio(diff * diff, base * base)
            t = TensorChange(name, "frozen" if same else "changed", tuple(a.shape),
                             tuple(b.shape), rel, kind)  # fmt: skip
            sq[name] = (diff * diff, base * base)
            tensors.append(t)
    return tensors, sq


def _layer_status(statuses: set[str]) -> str:
    if statuses == {"added"}:
        return "added"
    if statuses == {"removed"}:
        return "removed"
    if statuses & {"added", "removed", "reshaped"}:
        return "reshaped"
    return "changed" if "changed" in statuses else "frozen"


def _onnx_initializers(card: ModelCard) -> dict[str, Any]:
    """An ONNX graph's initializers by name (parsing the protobuf runs nothing; external data
    is not read: the onnx format refuses it). Names are the exporter's: a graph exported from
    the same code keeps them, constant folding may rename some."""
    import torch

    try:
        import onnx
        from onnx import numpy_helper
    except ImportError:
        raise KpModelError(
            f"{card.path}: diffing an ONNX graph reads its initializers with the onnx package "
            "(pip install pytest-kpmodel[onnx])"
        ) from None
    try:
        graph = onnx.load(str(card.model.weights), load_external_data=False).graph
    except Exception as exc:  # noqa: BLE001 - protobuf's errors name no common type
        raise KpModelError(f"{card.model.weights}: not a readable ONNX graph: {exc}") from None
    return {i.name: torch.from_numpy(numpy_helper.to_array(i).copy()) for i in graph.initializer}


def count_flops(module, shape=FLOPS_INPUT, seed: int = FLOPS_SEED) -> tuple[int | None, str]:
    """FLOPs of one forward pass on one seeded random image, eval mode, CPU; (None, why) on error."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    gen = torch.Generator().manual_seed(seed)
    image = torch.rand(shape, generator=gen)
    was_training = getattr(module, "training", False)
    try:
        if hasattr(module, "eval"):
            module.eval()
        counter = FlopCounterMode(display=False)
        with torch.no_grad(), counter:
            module([image])
        return int(counter.get_total_flops()), ""
    except Exception as exc:  # a foreign model may fail in many ways; the diff stays useful
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return None, f"FLOPs not counted: {type(exc).__name__}: {first[:200]}"
    finally:
        if was_training and hasattr(module, "train"):
            module.train()


# -- helpers -------------------------------------------------------------------------------------
def _kinds(module, sd) -> dict[str, str]:
    if module is None:
        return {}
    params = {n for n, _ in module.named_parameters()}
    return {k: ("parameter" if k in params else "buffer") for k in sd}


def _count_params(module, sd) -> int | None:
    if module is not None:
        return int(sum(p.numel() for p in module.parameters()))
    return int(sum(t.numel() for t in sd.values() if t.is_floating_point()))


def _ratio(num: float, den: float) -> float | None:
    if num == 0.0:
        return 0.0
    if den == 0.0:
        return None
    return math.sqrt(num / den)


def _json_float(x: float | None) -> float | None:
    if x is None or not math.isfinite(x):
        return None
    return float(x)


def session_diff(session, **kwargs: Any) -> ModelDiff:
    """The ``kp_diff`` fixture's value: the run's model against its baseline (--kp-baseline or
    the card's ``provenance.base``), loading code formats only under --kp-allow-code."""
    return diff_cards(
        session.card,
        session.baseline.card,
        allow_code=session.settings.allow_code,
        **{"seed": session.settings.seed, **kwargs},
    )
