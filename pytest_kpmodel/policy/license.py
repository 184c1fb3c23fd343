"""May we use this model, and will it run here? Licenses, dependencies, vulnerabilities, SBOM.

Entry points (plain Python, no pytest):

- ``kp_license(card, ...)``: the card's SPDX license (and optionally the licenses of the Python
  packages the model needs) against the adopter's policy.
- ``kp_dependencies(card, ...)``: Python, requirements, CUDA runtime, GPU architecture, OS, custom
  ops/layers, and known vulnerabilities (with a local OSV database) on this machine.
- ``write_sbom(path, card, ...)`` (re-exported from ``sbom``): a CycloneDX SBOM.
- ``evaluate_kp_license`` / ``evaluate_kp_dependencies`` / ``write_session_sbom``: the same, taking
  the run's ``KpSession``, for ``checks.EVALUATORS`` and the plugin.

Both checks return a ``PolicyResult``: a ``CheckResult`` whose ``subchecks`` say, for each thing
asked, whether it passed, failed or was skipped here (and why). The result's ``skipped`` is set
only when *every* sub-check asked was skipped (or nothing was asked at all), so the plugin skips
the test; otherwise the test passes or fails on the findings, and the skipped sub-checks are
reported — each also appears as an ``info`` finding whose ``details["skipped"]`` is the reason,
so it reaches ``kp-report.json``. ``result.summary()`` reads e.g.
``"python passed, requires passed, cuda skipped (no CUDA GPU is available ...)"``.

Finding ``check`` names: ``license``, ``license.dependencies``, ``dependencies.python``,
``dependencies.requires``, ``dependencies.cuda``, ``dependencies.gpu_arch``, ``dependencies.os``,
``dependencies.custom_ops``, ``dependencies.vulnerabilities``. Severities: ``fail`` fails the
test; ``warn`` and ``info`` are reported only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from packaging.utils import canonicalize_name

from .errors import KpModelError
from .findings import CheckResult, Finding
from .policy_deps import (
    Platform,
    SkipCheck,
    check_cuda,
    check_custom_code,
    check_gpu_arch,
    check_os,
    check_python,
    check_requires,
    installed_distributions,
    parse_requirement,
    probe_platform,
    requirement_closure,
)
from .policy_license import (
    UNKNOWN,
    LicensePolicy,
    check_expression,
    distribution_license,
    evaluate,
    normalized,
    render,
)
from .sbom import SbomWritten, write_sbom

if TYPE_CHECKING:
    from pathlib import Path

    from .card import ModelCard

__all__ = [
    "LicensePolicy",
    "Platform",
    "PolicyResult",
    "SbomWritten",
    "SubCheck",
    "evaluate_kp_dependencies",
    "evaluate_kp_license",
    "kp_dependencies",
    "kp_license",
    "probe_platform",
    "write_sbom",
    "write_session_sbom",
]

Status = Literal["passed", "failed", "skipped"]


@dataclass(frozen=True)
class SubCheck:
    name: str  # "python", "requires", "cuda", ... (the finding check name without its prefix)
    status: Status
    reason: str = ""  # why it was skipped

    def describe(self) -> str:
        return f"{self.name} {self.status}" + (f" ({self.reason})" if self.reason else "")


@dataclass
class PolicyResult(CheckResult):
    subchecks: list[SubCheck] = field(default_factory=list)

    @property
    def skipped_subchecks(self) -> dict[str, str]:
        return {s.name: s.reason for s in self.subchecks if s.status == "skipped"}

    def summary(self) -> str:
        return ", ".join(s.describe() for s in self.subchecks) or "nothing checked"

    def to_json(self) -> dict[str, Any]:
        out = super().to_json()
        out["subchecks"] = [
            {"name": s.name, "status": s.status, "reason": s.reason} for s in self.subchecks
        ]
        return out


class _Assembler:
    """Runs sub-checks, each contributing findings or a skip reason, into one PolicyResult."""

    def __init__(self, check: str, prefix: str) -> None:
        self.result = PolicyResult(check)
        self.prefix = prefix

    def run(self, name: str, fn: Callable[[], list[Finding]]) -> None:
        full = f"{self.prefix}.{name}" if self.prefix else name
        try:
            findings = fn()
        except SkipCheck as exc:
            reason = str(exc)
            self.result.subchecks.append(SubCheck(name, "skipped", reason))
            self.result.findings.append(
                Finding(full, f"{name}: skipped, {reason}", "info", {"skipped": reason})
            )
            return
        failed = any(f.severity == "fail" for f in findings)
        self.result.subchecks.append(SubCheck(name, "failed" if failed else "passed"))
        self.result.findings.extend(findings)

    def done(self, nothing_asked: str) -> PolicyResult:
        subs = self.result.subchecks
        if not subs:
            self.result.skipped = nothing_asked
        elif all(s.status == "skipped" for s in subs):
            self.result.skipped = "; ".join(f"{s.name}: {s.reason}" for s in subs)
        return self.result


# -- licenses --------------------------------------------------------------------------------------------
def kp_license(
    card: ModelCard | None,
    *,
    allow: Sequence[str] | str = (),
    deny: Sequence[str] | str = (),
    copyleft: bool | str = False,
    commercial: bool = False,
    unknown: bool = False,
    noncommercial: bool = False,
    restricted: bool = False,
    weak_copyleft: bool = False,
    licenses: str = "model",
    requires: Sequence[str] | None = None,
    paths: Sequence[str] | None = None,
    spdx: str | None = None,
) -> PolicyResult:
    """Judge the model's license (``card.license.spdx``, or ``spdx``) against an adoption policy.

    What the flags mean for an adopter who ships the model inside a product:

    - permissive licenses (MIT, BSD, Apache-2.0, CC0, CC-BY...) are always acceptable;
    - ``copyleft=False`` (default): no copyleft - neither strong and network copyleft (GPL,
      AGPL, SSPL, EUPL, CC-BY-SA: the combined work, or a service using it, must be released) nor
      weak copyleft (LGPL, MPL, EPL: changes to the licensed files or library must be shared;
      also GPL with a linking exception such as Classpath, which frees the code that links with
      the work but not the work itself); ``weak_copyleft=True`` accepts weak copyleft
      deliberately, ``copyleft=True`` accepts both (``copyleft="none"`` is the same as False);
    - ``commercial=False`` (default): commercial or custom terms (any ``LicenseRef-*``, proprietary
      licenses) are refused unless the id is listed in ``allow`` — custom terms need a lawyer and
      usually a contract; ``commercial=True`` means the adopter has one;
    - ``noncommercial=False`` (default): non-commercial licenses (CC-BY-NC-*, PolyForm
      Noncommercial...) are refused, because the adopter's use is assumed commercial; set
      ``noncommercial=True`` for research or internal evaluation;
    - ``restricted=False`` (default): licenses with use-based restrictions or no-derivatives terms
      (the OpenRAIL family, Llama licenses, BUSL, Elastic, CC-BY-ND, Hippocratic, JSON) are
      refused; ``restricted=True`` accepts them after review;
    - ``unknown=False`` (default): ids this plugin cannot classify are refused; ``unknown=True``
      accepts them (and turns unclassifiable dependency licenses into warnings);
    - ``allow``/``deny``: ids or globs; ``deny`` always wins, ``allow`` accepts an id whatever its
      class. ``A OR B`` passes when either choice does, ``A AND B`` needs both.

    ``licenses="dependencies"`` also checks the installed distributions the model needs —
    ``requires`` (default: the card's ``[dependencies] requires``) and everything they pull in —
    read from their metadata (License-Expression, then License, then classifiers); a package
    whose license cannot be classified is reported, not guessed. ``paths`` replaces ``sys.path``
    for finding distributions. A card without a license is a failing finding.
    """
    if licenses not in ("model", "dependencies"):
        raise KpModelError(f"kp_license: licenses={licenses!r}; use 'model' or 'dependencies'")
    policy = LicensePolicy.build(
        allow, deny, copyleft, commercial, noncommercial, restricted, unknown, weak_copyleft
    )
    asm = _Assembler("kp_license", "")
    expression = spdx if spdx is not None else (card.license.spdx if card is not None else None)
    where = f"{card.path} [license] spdx" if card is not None and spdx is None else "spdx"
    asm.run("license", lambda: _model_license(expression, where, policy))
    if licenses == "dependencies":
        roots = list(requires) if requires is not None else (
            list(card.dependencies.requires) if card is not None else []
        )  # fmt: skip
        asm.run("license.dependencies", lambda: _dependency_licenses(roots, policy, paths))
    return asm.done("nothing to check")


def _model_license(expression: str | None, where: str, policy: LicensePolicy) -> list[Finding]:
    if not expression or not expression.strip():
        return [
            Finding(
                "license",
                f"the model states no license ({where} is missing): without one there is no "
                "permission to use it",
                details={"expression": None},
            )
        ]
    verdict, tree = check_expression(expression, policy)
    details: dict[str, Any] = {"expression": expression}
    findings: list[Finding] = []
    if tree is not None:
        details["normalized"] = render(tree)
        norm = normalized(expression)
        if norm and " ".join(norm.split()).lower() != " ".join(expression.split()).lower():
            findings.append(
                Finding(
                    "license",
                    f"license {expression!r} normalised to {norm!r} (deprecated or misspelt ids)",
                    "info",
                    details,
                )
            )
    if verdict.ok:
        chosen = ", ".join(f"{t.text} ({t.cls})" for t in verdict.accepted)
        findings.append(
            Finding(
                "license",
                f"license {expression!r} accepted: {chosen}",
                "info",
                {**details, "accepted": [t.text for t in verdict.accepted], "notes": verdict.notes},
            )
        )
        return findings
    for reason in verdict.reasons:
        findings.append(Finding("license", f"license {expression!r}: {reason}", "fail", details))
    return findings


def _dependency_licenses(
    roots: Sequence[str], policy: LicensePolicy, paths: Sequence[str] | None
) -> list[Finding]:
    if not roots:
        raise SkipCheck(
            "no requirements are known (the card's [dependencies] requires is empty and none "
            "were given), so there are no packages whose licenses to check"
        )
    reqs = [parse_requirement(r, "kp_license requires") for r in roots]
    dists = installed_distributions(paths)
    closure = requirement_closure(reqs, dists)
    findings = []
    for req in reqs:
        if canonicalize_name(req.name) not in dists:
            findings.append(
                Finding(
                    "license.dependencies",
                    f"{req.name} is required but not installed: its license was not checked",
                    "warn",
                    {"package": req.name},
                )
            )
    for name, dist in sorted(closure.items()):
        lic = distribution_license(dist)
        label = f"{dist.metadata['Name']} {dist.version}"
        details = {"package": name, "version": dist.version, "source": lic.source,
                   "license": lic.raw, "notes": list(lic.notes)}  # fmt: skip
        if lic.tree is None:
            said = f"License {lic.raw!r}" if lic.raw else "no license metadata"
            findings.append(
                Finding(
                    "license.dependencies",
                    f"{label}: license cannot be classified ({said}; no License-Expression or "
                    "license classifier)" + ("" if not policy.unknown else " (unknown=True)"),
                    "warn" if policy.unknown else "fail",
                    {**details, "class": UNKNOWN},
                )
            )
            continue
        verdict = evaluate(lic.tree, policy)
        details["normalized"] = render(lic.tree)
        if not verdict.ok:
            for reason in verdict.reasons:
                findings.append(
                    Finding(
                        "license.dependencies",
                        f"{label} ({lic.source} {render(lic.tree)!r}): {reason}",
                        "fail",
                        details,
                    )
                )
    return findings


# -- dependencies ------------------------------------------------------------------------------------------
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

    asm = _Assembler("kp_dependencies", "dependencies")
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
    from .osv import check_vulnerabilities

    if osv_db is None:
        raise SkipCheck(
            "no vulnerability database: pass --kp-osv-db=PATH (a local OSV export, e.g. the "
            "PyPI all.zip from the osv-vulnerabilities bucket, or a folder of OSV JSON files)"
        )
    installed = {name: d.version for name, d in installed_distributions(paths).items()}
    return check_vulnerabilities(osv_db, installed, ignore)


# -- the run (KpSession) -----------------------------------------------------------------------------------
def evaluate_kp_license(session, *args: Any, **kwargs: Any) -> PolicyResult:
    """``checks.EVALUATORS["kp_license"]``: the marker's keyword arguments on the run's card."""
    if args:
        raise KpModelError("kp_license takes keyword arguments only, e.g. kp_license(allow=[...])")
    return kp_license(session.card, **kwargs)


def evaluate_kp_dependencies(session, *args: Any, **kwargs: Any) -> PolicyResult:
    """``checks.EVALUATORS["kp_dependencies"]``: uses the run's card, device, ``--kp-osv-db``
    and, for custom ops, the run's model (loaded lazily; a load failure skips that sub-check)."""
    if args:
        raise KpModelError("kp_dependencies takes keyword arguments only, e.g. python='>=3.10'")
    kwargs.setdefault("osv_db", getattr(session.settings, "osv_db", None))
    kwargs.setdefault("device", session.device)
    if kwargs.get("custom_ops") is not False:
        kwargs.setdefault("model", lambda: session.model)
    return kp_dependencies(session.card, **kwargs)


def write_session_sbom(session) -> SbomWritten | None:
    """At the end of the run: write ``--kp-sbom`` (None when the option is not set)."""
    path = getattr(session.settings, "sbom", None)
    if path is None:
        return None
    card = session.card if session.has_model else None
    digest = session.weights_digest if card is not None else None
    return write_sbom(path, card, model_sha256=digest)
