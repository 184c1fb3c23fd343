"""Custom operators and layers: code a model ships beyond torch and torchvision.

``find_custom_code(model)`` lists ops outside the torch/torchvision namespaces in TorchScript,
``torch.export`` and fx graphs, and ``nn.Module`` subclasses defined outside torch/torchvision in
eager modules, each with where it is defined and used; ``check_custom_code`` turns them into
``dependencies.custom_ops`` findings. torch is imported only when a model is inspected.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any, Literal

from ..findings import Finding
from .result import SkipCheck

# Operator namespaces that ship with torch and torchvision themselves.
BUILTIN_OP_NAMESPACES = frozenset({
    "aten", "prim", "prims", "torchvision", "image", "quantized", "_quantized",
    "quantized_decomposed", "quantization", "profiler", "cuda", "cudnn", "mkldnn",
    "mkldnn_prepacked", "mkl", "onednn", "sparse", "higher_order", "onnx", "onnx_symbolic",
    "c10d", "c10d_functional", "_c10d_functional", "_c10d_functional_autograd", "_dtensor",
    "symm_mem", "static_runtime", "streams", "inductor", "inductor_prims", "fsdp", "_native",
    "mempool", "debugprims", "rngprims", "flex_lib", "debug_mode_ops", "export", "_caffe2",
    "attr", "scope", "tensorexpr",
})  # fmt: skip
BUILTIN_MODULE_PACKAGES = ("torch", "torchvision")
# The plugin's own implementations of model families (adapters/detectron2, the Ultralytics
# stand-ins) are written in torch/torchvision ops and come with the plugin, not with the model:
# a detectron2 .pkl or an Ultralytics .pt brings no code. Their layers are one info line per
# family, never custom layers; deploying such a model outside the plugin needs the family's own
# library or an export (an exported graph is checked like any other).
PLUGIN_FAMILIES = "pytest_kpmodel.adapters."


@dataclass(frozen=True)
class CustomCode:
    """A custom operator in a graph, or a layer class defined outside torch/torchvision."""

    kind: Literal["op", "layer"]
    name: str  # "mylib::nms" or "vendor.heads.KeypointHead"
    source: str | None  # where it is defined: "file.py:12", or the op's registration site
    where: tuple[str, ...] = ()  # graph methods or module paths that use it
    registered: bool = True  # ops: whether this process knows the op (it can run)

    def describe(self) -> str:
        where = f" used in {', '.join(self.where[:3])}" + (
            f" and {len(self.where) - 3} more" if len(self.where) > 3 else ""
        ) if self.where else ""  # fmt: skip
        src = f" (defined at {self.source})" if self.source else ""
        what = "custom op" if self.kind == "op" else "custom layer"
        return f"{what} {self.name}{src}{where}"


@dataclass
class _Collector:
    found: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)

    def add(self, kind: str, name: str, where: str, source=None, registered=True) -> None:
        entry = self.found.setdefault(
            (kind, name), {"where": [], "source": source, "registered": registered}
        )
        if where not in entry["where"]:
            entry["where"].append(where)

    def result(self) -> list[CustomCode]:
        return [
            CustomCode(kind, name, e["source"], tuple(e["where"]), e["registered"])  # type: ignore[arg-type]
            for (kind, name), e in sorted(self.found.items())
        ]


def unwrap_model(model: Any) -> Any:
    """The inspectable object behind an adapter: an nn.Module, ScriptModule or ExportedProgram."""
    for _ in range(3):
        if _is_inspectable(model):
            return model
        inner = next(
            (getattr(model, a) for a in ("module", "model", "program") if hasattr(model, a)), None
        )
        if inner is None:
            break
        model = inner
    return model


def _is_inspectable(obj: Any) -> bool:
    import torch

    return isinstance(obj, torch.nn.Module | torch.export.ExportedProgram)


def find_custom_code(model: Any) -> list[CustomCode]:
    """Custom ops (TorchScript graphs, ExportedPrograms, fx graphs) and custom layers (eager).

    Eager modules are judged by class: any ``nn.Module`` subclass defined outside torch and
    torchvision is a custom layer, reported with its source file. Custom ops that an eager
    ``forward`` calls directly are only visible once the model is scripted or exported.
    """
    import torch

    model = unwrap_model(model)
    col = _Collector()
    if isinstance(model, torch.export.ExportedProgram):
        _fx_ops(model.graph_module, "graph", col)
    elif isinstance(model, torch.jit.ScriptModule):
        _script_ops(model, col)
    elif isinstance(model, torch.nn.Module):
        _eager_layers(model, col)
    else:
        raise SkipCheck(
            f"cannot inspect a {type(model).__module__}.{type(model).__qualname__} for custom "
            "ops (not an nn.Module, ScriptModule or ExportedProgram)"
        )
    return col.result()


def _op_namespace(qualname: str) -> str:
    return qualname.split("::", 1)[0] if "::" in qualname else ""


def _op_source(qualname: str) -> str | None:
    import torch

    try:
        dump = torch._C._dispatch_dump(qualname)
    except Exception:
        return None
    m = re.search(r"^debug: registered at (.+)$", dump, re.MULTILINE)
    return m.group(1).strip() if m else None


def _op_registered(qualname: str) -> bool:
    import torch

    ns, _, name = qualname.partition("::")
    try:
        getattr(getattr(torch.ops, ns), name.split(".")[0])
    except (AttributeError, RuntimeError):
        return False
    return True


def _add_op(col: _Collector, qualname: str, where: str) -> None:
    if _op_namespace(qualname) in BUILTIN_OP_NAMESPACES or "::" not in qualname:
        return
    key = ("op", qualname)
    if key in col.found:
        col.add("op", qualname, where)
        return
    col.add("op", qualname, where, _op_source(qualname), _op_registered(qualname))


def _walk_script_graph(graph, where: str, col: _Collector) -> bool:
    calls_function = False
    stack = list(graph.nodes())
    while stack:
        node = stack.pop()
        kind = node.kind()
        if kind == "prim::CallFunction":
            calls_function = True
        _add_op(col, kind, where)
        for block in node.blocks():
            stack.extend(block.nodes())
    return calls_function


def _script_ops(module, col: _Collector, prefix: str = "") -> None:
    import torch

    for path, sub in module.named_modules(prefix=prefix):
        c = getattr(sub, "_c", None)
        if c is None:
            continue
        for method in c._method_names():
            graph = c._get_method(method).graph
            where = f"{path}.{method}" if path else method
            if _walk_script_graph(graph, where, col):
                inlined = graph.copy()
                torch._C._jit_pass_inline(inlined)  # free functions called from the method
                _walk_script_graph(inlined, where, col)


def _fx_ops(graph_module, where: str, col: _Collector) -> None:
    import torch

    for path, gm in graph_module.named_modules():
        if not isinstance(gm, torch.fx.GraphModule):
            continue
        for node in gm.graph.nodes:
            if node.op != "call_function":
                continue
            target = node.target
            if isinstance(target, torch._ops.OpOverload | torch._ops.OpOverloadPacket):
                qualname = target._schema.name if hasattr(target, "_schema") else str(target)
                _add_op(col, qualname, f"{where}.{path}" if path else where)


def _eager_layers(model, col: _Collector) -> None:
    import torch

    scripted: list[str] = []
    for path, sub in model.named_modules():
        if any(path.startswith(p + ".") for p in scripted):
            continue  # inside a scripted submodule: its graphs were walked
        if isinstance(sub, torch.jit.ScriptModule):
            scripted.append(path)
            _script_ops(sub, col, prefix=path)
            continue
        cls = type(sub)
        mod = cls.__module__ or ""
        if any(mod == p or mod.startswith(p + ".") for p in BUILTIN_MODULE_PACKAGES):
            continue
        name = f"{mod}.{cls.__qualname__}"
        key = ("layer", name)
        source = col.found[key]["source"] if key in col.found else _class_source(cls)
        col.add("layer", name, path or "<root>", source)
    if isinstance(model, torch.fx.GraphModule):
        _fx_ops(model, "graph", col)


def _class_source(cls: type) -> str | None:
    try:
        path = inspect.getsourcefile(cls)
    except TypeError:
        return None
    if path is None:
        return None
    try:
        line = inspect.getsourcelines(cls)[1]
    except (OSError, TypeError):
        return path
    return f"{path}:{line}"


def check_custom_code(
    model: Any, allowed: bool | Sequence[str] | None = None
) -> tuple[list[Finding], list[CustomCode]]:
    """Findings for custom ops/layers.

    ``allowed=None``: each one is a warning (listed, not failing); ``False``: each one fails;
    ``True``: each one is listed as info; a list of names or globs (``"mylib::*"``,
    ``"vendor.heads.*"``): those are info, the others fail. An op this process has no
    registration for always fails: the model cannot run here without its library.
    """
    found = find_custom_code(model)
    findings = _family_notes([c for c in found if c.name.startswith(PLUGIN_FAMILIES)])
    found = [c for c in found if not c.name.startswith(PLUGIN_FAMILIES)]
    for item in found:
        details = {"kind": item.kind, "name": item.name, "source": item.source,
                   "where": list(item.where), "registered": item.registered}  # fmt: skip
        if item.kind == "op" and not item.registered:
            findings.append(
                Finding(
                    "dependencies.custom_ops",
                    f"{item.describe()} is not registered in this process: load the library "
                    "that defines it before the model",
                    details=details,
                )
            )
            continue
        if allowed is True or (
            not isinstance(allowed, bool | type(None))
            and any(fnmatchcase(item.name, pat) for pat in allowed)
        ):
            severity = "info"
            suffix = " (allowed)"
        elif allowed is None:
            severity, suffix = "warn", " (ships code the adopter must trust and maintain)"
        else:
            severity, suffix = "fail", " (not in custom_ops)"
        findings.append(
            Finding("dependencies.custom_ops", item.describe() + suffix, severity, details)
        )
    return findings, found


def _family_notes(layers: list[CustomCode]) -> list[Finding]:
    """One info line per model family the plugin implements (see PLUGIN_FAMILIES)."""
    families: dict[str, list[str]] = {}
    for c in layers:
        family = c.name.removeprefix(PLUGIN_FAMILIES).split(".", 1)[0]
        families.setdefault(family, []).append(c.name.rsplit(".", 1)[-1])
    return [
        Finding(
            "dependencies.custom_ops",
            f"{len(names)} layers of the plugin's own {family} implementation "
            f"({PLUGIN_FAMILIES}{family}: torch and torchvision ops only); the model ships no "
            f"code, and running it outside the plugin needs {family} itself or an export",
            "info",
            {"family": family, "layers": sorted(names)},
        )
        for family, names in sorted(families.items())
    ]
