"""Will the model run on this stack? Python, requirements, CUDA, GPU architecture, OS, custom ops.

Each ``check_*`` function returns the findings of one sub-check, or raises ``SkipCheck`` with the
reason when that sub-check cannot run on this machine (no GPU, torch missing...). ``policy.py``
assembles the sub-checks into one result; nothing here knows pytest.

What the machine looks like is captured once in a ``Platform`` (``probe_platform``), so that tests
can describe a GPU machine on a CPU-only one. Installed distributions are read with
``importlib.metadata``, optionally from explicit ``paths`` (a site dir, or a folder of
``*.dist-info``) instead of ``sys.path``.
"""

from __future__ import annotations

import inspect
import platform as _platform
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from importlib import metadata
from typing import Any, Literal

from packaging.markers import Marker
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from .errors import KpModelError
from .findings import Finding


class SkipCheck(Exception):
    """A sub-check cannot run here; the message says why (never a silent pass)."""


# -- the machine -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Platform:
    """The facts the dependency checks compare against (``probe_platform`` reads them)."""

    python: str  # "3.11.9"
    sys_platform: str  # "linux", "darwin", "win32"
    machine: str  # "x86_64", "aarch64", "arm64", "AMD64"
    torch: str | None = None  # torch.__version__, None when torch cannot be imported
    torch_error: str | None = None  # why torch could not be imported
    cuda_build: str | None = None  # torch.version.cuda: the CUDA runtime torch was built with
    hip_build: str | None = None  # torch.version.hip (ROCm builds)
    gpu: str | None = None  # name of the GPU the model would run on; None when none is used
    no_gpu_reason: str | None = None  # why gpu is None
    capability: tuple[int, int] | None = None  # torch.cuda.get_device_capability()
    arch_list: tuple[str, ...] = ()  # torch.cuda.get_arch_list(): what this torch build targets


def probe_platform(device: str | None = None) -> Platform:
    """This machine. ``device`` is the run's ``--kp-device``: with ``cpu`` no GPU is used."""
    base = dict(
        python=_platform.python_version(),
        sys_platform=sys.platform,
        machine=_platform.machine(),
    )
    try:
        import torch
    except Exception as exc:  # ImportError, or a broken install raising anything else
        return Platform(
            **base,
            torch_error=f"torch cannot be imported ({type(exc).__name__}: {exc})",
            no_gpu_reason="torch is not installed",
        )
    info: dict[str, Any] = dict(
        torch=str(torch.__version__),
        cuda_build=getattr(torch.version, "cuda", None),
        hip_build=getattr(torch.version, "hip", None),
    )
    if device is not None and str(device).split(":")[0] not in ("cuda", "auto", ""):
        return Platform(
            **base, **info, no_gpu_reason=f"the model runs on {device!r}, not a CUDA GPU"
        )
    if not torch.cuda.is_available():
        return Platform(**base, **info, no_gpu_reason="no CUDA GPU is available")
    index = torch.device(device).index if device and str(device).startswith("cuda") else None
    index = index or 0
    return Platform(
        **base,
        **info,
        gpu=torch.cuda.get_device_name(index),
        capability=tuple(torch.cuda.get_device_capability(index)),
        arch_list=tuple(torch.cuda.get_arch_list()),
    )


# -- installed distributions -----------------------------------------------------------------------
def installed_distributions(paths: Sequence[str] | None = None) -> dict[str, metadata.Distribution]:
    """Canonical (PEP 503) name -> distribution; the first one found on the path wins."""
    found = metadata.distributions(path=[str(p) for p in paths]) if paths is not None else None
    dists: dict[str, metadata.Distribution] = {}
    for dist in found if found is not None else metadata.distributions():
        name = dist.metadata.get("Name") if dist.metadata is not None else None
        if name:
            dists.setdefault(canonicalize_name(name), dist)
    return dists


def parse_requirement(text: str, origin: str) -> Requirement:
    try:
        return Requirement(text)
    except InvalidRequirement as exc:
        raise KpModelError(f"{origin}: {text!r} is not a requirement: {exc}") from None


def marker_applies(marker: Marker | None, extra: str = "") -> bool:
    if marker is None:
        return True
    return marker.evaluate({"extra": extra})


def _dist_requirements(
    dist: metadata.Distribution, extras: Iterable[str] = ()
) -> list[Requirement]:
    """What installing ``dist`` (with ``extras``) pulls in here: markers evaluated."""
    out = []
    extras = ("", *extras)
    for text in dist.requires or ():
        try:
            req = Requirement(text)
        except InvalidRequirement:
            continue  # a broken Requires-Dist line in someone else's metadata: not ours to judge
        if any(marker_applies(req.marker, e) for e in extras):
            out.append(req)
    return out


def requirement_closure(
    requires: Iterable[Requirement], dists: dict[str, metadata.Distribution]
) -> dict[str, metadata.Distribution]:
    """The installed distributions the requirements pull in, transitively (markers applied)."""
    out: dict[str, metadata.Distribution] = {}
    seen: set[tuple[str, frozenset[str]]] = set()
    todo = [r for r in requires if marker_applies(r.marker)]
    while todo:
        req = todo.pop()
        name = canonicalize_name(req.name)
        key = (name, frozenset(req.extras))
        if key in seen:
            continue
        seen.add(key)
        dist = dists.get(name)
        if dist is None:
            continue  # missing: the requires sub-check reports it
        out[name] = dist
        todo.extend(_dist_requirements(dist, req.extras))
    return out


# -- sub-checks --------------------------------------------------------------------------------------
def check_python(spec: str, plat: Platform, origin: str = "marker") -> list[Finding]:
    specs = _specifier(spec, "python", origin)
    if specs.contains(plat.python, prereleases=True):
        return []
    return [
        Finding(
            "dependencies.python",
            f"needs Python {spec} ({origin}); this is Python {plat.python}",
            details={"required": spec, "found": plat.python, "origin": origin},
        )
    ]


def check_requires(
    requires: Sequence[str],
    dists: dict[str, metadata.Distribution],
    origin: str = "marker",
) -> list[Finding]:
    findings: list[Finding] = []
    for text in requires:
        req = parse_requirement(text, f"requires ({origin})")
        if not marker_applies(req.marker):
            findings.append(
                Finding(
                    "dependencies.requires",
                    f"{text!r}: not needed on this platform (marker {req.marker} is false)",
                    severity="info",
                    details={"requirement": text, "origin": origin},
                )
            )
            continue
        findings.extend(_check_one_requirement(req, text, dists, origin))
    return findings


def _check_one_requirement(
    req: Requirement,
    text: str,
    dists: dict[str, metadata.Distribution],
    origin: str,
    extra: str | None = None,
) -> list[Finding]:
    details = {"requirement": text, "origin": origin}
    prefix = f"requires {text!r}"
    if extra is not None:
        needed = f"{req.name}{req.specifier}"
        prefix += f": its extra {extra!r} needs {needed!r}"
        details["extra"] = extra
    dist = dists.get(canonicalize_name(req.name))
    if dist is None:
        return [
            Finding(
                "dependencies.requires",
                f"{prefix} ({origin}), but {req.name} is not installed",
                details={**details, "found": None},
            )
        ]
    version = dist.version
    details["found"] = version
    if req.specifier:
        try:
            ok = req.specifier.contains(Version(version), prereleases=True)
        except InvalidVersion:
            return [
                Finding(
                    "dependencies.requires",
                    f"{prefix} ({origin}): installed {req.name} {version!r} is not a PEP 440 "
                    "version, so it cannot be compared",
                    details=details,
                )
            ]
        if not ok:
            return [
                Finding(
                    "dependencies.requires",
                    f"{prefix} ({origin}), but {req.name} {version} is installed",
                    details=details,
                )
            ]
    findings: list[Finding] = []
    if extra is None:
        for name in sorted(req.extras):
            for sub in _dist_requirements(dist, [name]):
                if not marker_applies(sub.marker):  # only in the extra
                    findings.extend(_check_one_requirement(sub, text, dists, origin, extra=name))
    return findings


def check_cuda(spec: str, plat: Platform, origin: str = "marker") -> list[Finding]:
    """The CUDA runtime torch uses, against ``spec``; only meaningful when a GPU runs the model."""
    specs = _specifier(spec, "cuda", origin)
    if plat.torch is None:
        raise SkipCheck(plat.torch_error or "torch is not installed")
    if plat.hip_build:
        raise SkipCheck(f"torch {plat.torch} is a ROCm (HIP {plat.hip_build}) build, not CUDA")
    if plat.gpu is None:
        build = f"built with CUDA {plat.cuda_build}" if plat.cuda_build else "a CPU-only build"
        raise SkipCheck(
            f"{plat.no_gpu_reason}; the CUDA runtime only matters when a GPU runs the model "
            f"(torch {plat.torch} is {build})"
        )
    found = plat.cuda_build
    details = {"required": spec, "found": found, "origin": origin}
    if found is None:
        return [Finding("dependencies.cuda", f"needs CUDA {spec} ({origin}); torch has no CUDA "
                        "runtime", details=details)]  # fmt: skip
    try:
        ok = specs.contains(Version(found), prereleases=True)
    except InvalidVersion:
        ok = False
    if ok:
        return []
    return [
        Finding(
            "dependencies.cuda",
            f"needs CUDA {spec} ({origin}); torch {plat.torch} uses CUDA {found}",
            details=details,
        )
    ]


_ARCH = re.compile(r"^(sm|compute)_(\d+)([a-z]?)$")


def _arch_capability(arch: str) -> tuple[str, tuple[int, int], str] | None:
    """'sm_86' -> ('sm', (8, 6), ''); 'sm_90a' -> ('sm', (9, 0), 'a'); 'compute_120' -> ..."""
    m = _ARCH.match(arch.strip().lower())
    if not m or len(m.group(2)) < 2:
        return None
    digits = m.group(2)
    return m.group(1), (int(digits[:-1]), int(digits[-1])), m.group(3)


def parse_gpu_arch(spec: str, origin: str = "marker"):
    """``">=8.0"``, ``"8.6"``, ``"sm_90"`` or ``"sm_80,sm_86"`` -> predicate on (major, minor).

    ``sm_XY`` names mean "exactly compute capability X.Y" (a comma list means any of them);
    anything else is a PEP 440 specifier on "major.minor" (a bare version means ``==``).
    """
    tokens = [t.strip() for t in spec.split(",") if t.strip()]
    if not tokens:
        raise KpModelError(f"gpu_arch ({origin}): empty specification")
    archs = [_arch_capability(t) for t in tokens]
    if all(archs):
        caps = {a[1] for a in archs if a}
        return lambda cap: tuple(cap) in caps
    if any(archs):
        raise KpModelError(
            f"gpu_arch ({origin}) {spec!r}: do not mix sm_XY names with version specifiers"
        )
    if re.fullmatch(r"\d+(\.\d+)?", spec.strip()):
        spec = "==" + spec.strip()
    specs = _specifier(spec, "gpu_arch", origin)
    return lambda cap: specs.contains(f"{cap[0]}.{cap[1]}", prereleases=True)


def build_supports(capability: tuple[int, int], arch_list: Iterable[str]) -> bool:
    """Can a torch build targeting ``arch_list`` run kernels on a GPU of ``capability``?

    A cubin for sm_XY runs on X.Z with Z >= Y (same major); arch-specific ``sm_XYa`` cubins only
    on X.Y exactly; PTX (``compute_XY``) is JIT-compiled for any capability >= X.Y.
    """
    for arch in arch_list:
        parsed = _arch_capability(arch)
        if parsed is None:
            continue
        kind, cap, suffix = parsed
        if kind == "compute" and tuple(capability) >= cap:
            return True
        if kind == "sm":
            if suffix == "a" and tuple(capability) == cap:
                return True
            if suffix != "a" and capability[0] == cap[0] and capability[1] >= cap[1]:
                return True
    return False


def check_gpu_arch(spec: str, plat: Platform, origin: str = "marker") -> list[Finding]:
    """The GPU's compute capability against ``spec`` and against what torch was built for.

    ``spec="any"`` asks only the second question.
    """
    accepts = None if spec.strip().lower() == "any" else parse_gpu_arch(spec, origin)
    if plat.torch is None:
        raise SkipCheck(plat.torch_error or "torch is not installed")
    if plat.gpu is None or plat.capability is None:
        raise SkipCheck(f"{plat.no_gpu_reason or 'no GPU is used'}; there is no GPU to compare")
    cap = plat.capability
    cap_s = f"{cap[0]}.{cap[1]}"
    details = {"required": spec, "found": cap_s, "gpu": plat.gpu, "origin": origin,
               "torch_arch_list": list(plat.arch_list)}  # fmt: skip
    findings = []
    if accepts is not None and not accepts(cap):
        findings.append(
            Finding(
                "dependencies.gpu_arch",
                f"needs GPU architecture {spec} ({origin}); {plat.gpu} has compute capability "
                f"{cap_s} (sm_{cap[0]}{cap[1]})",
                details=details,
            )
        )
    if not build_supports(cap, plat.arch_list):
        findings.append(
            Finding(
                "dependencies.gpu_arch",
                f"torch {plat.torch} was built for {', '.join(plat.arch_list) or 'no GPU arch'}, "
                f"which cannot run on {plat.gpu} (sm_{cap[0]}{cap[1]})",
                details=details,
            )
        )
    return findings


_OS_ALIASES = {"windows": "win32", "win": "win32", "macos": "darwin", "osx": "darwin",
               "mac": "darwin"}  # fmt: skip
_MACHINE_ALIASES = {"amd64": "x86_64", "x64": "x86_64", "x86-64": "x86_64", "arm64": "aarch64"}


def _norm_machine(machine: str) -> str:
    m = machine.lower()
    return _MACHINE_ALIASES.get(m, m)


def check_os(allowed: Sequence[str], plat: Platform, origin: str = "marker") -> list[Finding]:
    """``["linux", "darwin-arm64", "windows"]``: OS (``sys.platform`` prefix) and optional arch."""
    here_os, here_machine = plat.sys_platform.lower(), _norm_machine(plat.machine)
    for entry in allowed:
        os_name, _, machine = entry.strip().lower().replace("/", "-").partition("-")
        os_name = _OS_ALIASES.get(os_name, os_name)
        if here_os.startswith(os_name) and (not machine or _norm_machine(machine) == here_machine):
            return []
    return [
        Finding(
            "dependencies.os",
            f"supports {', '.join(allowed)} ({origin}); this is {plat.sys_platform} {plat.machine}",
            details={
                "required": list(allowed),
                "found": f"{plat.sys_platform}-{plat.machine}",
                "origin": origin,
            },  # fmt: skip
        )
    ]


def _specifier(spec: str, key: str, origin: str) -> SpecifierSet:
    try:
        return SpecifierSet(spec)
    except InvalidSpecifier:
        raise KpModelError(
            f"{key} ({origin}): {spec!r} is not a version specifier like '>=3.10'"
        ) from None


# -- custom operators and layers ---------------------------------------------------------------------
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
    findings = []
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
