"""``kp_dependencies``: will the model run on this stack? Python, requirements, CUDA, GPU, OS.

``kp_dependencies(card, ...)`` runs one sub-check per question asked (the card's
``[dependencies]`` by default) and returns a ``PolicyResult``: ``python``, ``requires``, ``cuda``,
``gpu_arch``, ``os`` (the ``check_*`` functions here, each comparing against a ``Platform``),
``custom_ops`` (:mod:`.custom_ops`) and ``vulnerabilities`` (:mod:`.osv`). A sub-check that cannot
run on this machine raises ``SkipCheck`` with the reason. Finding ``check`` names are
``dependencies.<sub-check>``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from importlib import metadata
from typing import TYPE_CHECKING, Any

from packaging.requirements import Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from ..errors import KpModelError
from ..findings import Finding
from .custom_ops import check_custom_code
from .distributions import (
    dist_requirements,
    installed_distributions,
    marker_applies,
    parse_requirement,
)
from .machine import Platform, probe_platform
from .osv import check_vulnerabilities
from .result import Assembler, PolicyResult, SkipCheck

if TYPE_CHECKING:
    from pathlib import Path

    from ..card import ModelCard


def kp_dependencies(
    card: ModelCard | None = None,
    *,
    python: str | bool | None = None,
    requires: Sequence[str] | bool | None = None,
    cuda: str | bool | None = None,
    gpu_arch: str | bool | None = None,
    os: Sequence[str] | str | bool | None = None,
    custom_ops: bool | Sequence[str] | None = None,
    model: Any = None,
    vulnerabilities: bool = True,
    osv_db: str | Path | None = None,
    osv_ignore: Sequence[str] = (),
    device: str | None = None,
    paths: Sequence[str] | None = None,
    platform: Platform | None = None,
) -> PolicyResult:
    """Does the model run on this stack? Each argument left ``None`` takes the card's value from
    ``[dependencies]``; ``False`` (for ``requires``/``os`` also an empty list) does not ask that
    question.

    - ``python=">=3.10"``: this interpreter's version;
    - ``requires=["torch>=2.4", ...]``: each against the installed distribution (missing, wrong
      version; environment markers evaluated; a requirement's extras must be installed too);
    - ``cuda=">=12.0"``: ``torch.version.cuda``, compared only when a GPU runs the model (the
      runtime is not used otherwise): on a CPU-only machine, a CPU-only torch or
      ``device="cpu"`` this sub-check is skipped with the reason (naming the build's CUDA);
    - ``gpu_arch=">=8.0" | "8.6" | "sm_90" | "sm_80,sm_86" | "any"``: the GPU's compute
      capability against that, and against the architectures torch was built for
      (``torch.cuda.get_arch_list()``: same-major cubins and older PTX count); skipped without GPU;
    - ``os=["linux", "darwin-arm64", "windows"]``: ``sys.platform`` (prefix) and optionally
      ``platform.machine()``;
    - ``custom_ops`` (needs ``model``: an nn.Module, ScriptModule, ExportedProgram, an adapter
      holding one in ``.module``, or a zero-argument callable returning one): ops outside the
      torch/torchvision namespaces in TorchScript/exported graphs, and layer classes defined
      outside torch/torchvision in eager modules, with their source file. ``None``: each is a
      warning; ``True``: each is info; a list of names/globs (``"mylib::*"``, ``"vendor.*"``):
      those are info, others fail (``[]``: none allowed); ``False``: not inspected. An op not
      registered in this process always fails;
    - ``vulnerabilities``: installed distributions against a local OSV database ``osv_db``
      (``--kp-osv-db``); without one this sub-check is skipped with that reason; ``osv_ignore``
      lists advisory ids or aliases the adopter has accepted (reported as info).

    ``device`` is the run's device (``cpu`` makes the GPU sub-checks skip); ``paths`` replaces
    ``sys.path`` for finding distributions; ``platform`` replaces probing this machine (tests).
    """
    deps = card.dependencies if card is not None else None
    plat_cache: list[Platform] = []

    def plat() -> Platform:
        if not plat_cache:
            plat_cache.append(platform or probe_platform(device))
        return plat_cache[0]

    def pick(value, card_value, empty):
        if value is False:
            return None, "marker"
        if value is None or value is True:
            return (card_value if card_value not in (None, empty) else None), "card"
        return value, "marker"

    asm = Assembler("kp_dependencies", "dependencies")
    py, py_origin = pick(python, deps.python if deps else None, "")
    if py is not None:
        asm.run("python", lambda: check_python(py, plat(), py_origin))
    reqs, req_origin = pick(requires, tuple(deps.requires) if deps else None, ())
    if reqs:
        if isinstance(reqs, str):
            reqs = [reqs]
        asm.run("requires", lambda: check_requires(list(reqs), installed_distributions(paths),
                                                   req_origin))  # fmt: skip
    cu, cu_origin = pick(cuda, deps.cuda if deps else None, "")
    if cu is not None:
        asm.run("cuda", lambda: check_cuda(cu, plat(), cu_origin))
    arch, arch_origin = pick(gpu_arch, deps.gpu_arch if deps else None, "")
    if arch is not None:
        asm.run("gpu_arch", lambda: check_gpu_arch(arch, plat(), arch_origin))
    oses, os_origin = pick(os, tuple(deps.os) if deps else None, ())
    if oses:
        if isinstance(oses, str):
            oses = [oses]
        asm.run("os", lambda: check_os(list(oses), plat(), os_origin))
    if custom_ops is not False and model is not None:
        allowed = [custom_ops] if isinstance(custom_ops, str) else custom_ops
        asm.run("custom_ops", lambda: _custom_ops(model, allowed))
    if vulnerabilities:
        asm.run("vulnerabilities", lambda: _vulnerabilities(osv_db, osv_ignore, paths))
    return asm.done(
        "nothing to check: the card declares no [dependencies] and the marker asks for none"
    )


def _custom_ops(model: Any, allowed) -> list[Finding]:
    if callable(model) and not _looks_like_model(model):
        try:
            model = model()
        except KpModelError as exc:
            raise SkipCheck(
                f"the model could not be loaded to look for custom ops: {exc}"
            ) from None
    findings, _ = check_custom_code(model, allowed)
    return findings


def _looks_like_model(obj: Any) -> bool:
    try:
        import torch
    except ImportError:
        return False
    return isinstance(obj, torch.nn.Module | torch.export.ExportedProgram) or hasattr(
        obj, "predict"
    )


def _vulnerabilities(osv_db, ignore: Sequence[str], paths) -> list[Finding]:
    if osv_db is None:
        raise SkipCheck(
            "no vulnerability database: pass --kp-osv-db=PATH (a local OSV export, e.g. the "
            "PyPI all.zip from the osv-vulnerabilities bucket, or a folder of OSV JSON files)"
        )
    installed = {name: d.version for name, d in installed_distributions(paths).items()}
    return check_vulnerabilities(osv_db, installed, ignore)


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
            for sub in dist_requirements(dist, [name]):
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
