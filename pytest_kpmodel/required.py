"""Checks that must run: ``--kp-require=gpu,fp16,vram,signature,...`` (ini ``kp_require``).

A check that cannot run here skips with its reason, and a skip is green: on a CPU runner a spec
with fp16, VRAM and CUDA checks passes without any of them having run. Naming them in
``--kp-require`` turns those skips into failures with the same reason, and a required check that
no test of the run evaluated at all fails the run (a gate cannot pass vacuously).

This module says, for one marker evaluation, fixture use or parity table, which named checks ran
and which did not (and why); the plugin records both as JUnit properties of the test
(``NOT_RUN_PROPERTY``, ``RAN_PROPERTY``) and collects them back from the test reports into a
``Ledger``, so the same bookkeeping works in one process and under xdist. No pytest here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import KpModelError, did_you_mean

# name -> what it stands for (``kpmodel``'s --help and the error for an unknown name list these)
REQUIRABLE: dict[str, str] = {
    "gpu": "the run itself on a CUDA device, and every check below that needs one "
    "(fp16, vram, cuda, gpu_arch)",
    "fp16": "fp16 accuracy drop (kp_thresholds(max_drop_fp16=), kp_precision_drop), fp16 timing "
    "and the fp16 parity row",
    "bf16": "bf16 accuracy drop, timing and parity row",
    "vram": "the peak-VRAM gate (kp_thresholds(vram_mib=))",
    "signature": "kp_provenance: the signature verified against a trusted key",
    "cuda": "kp_dependencies: the CUDA runtime requirement",
    "gpu_arch": "kp_dependencies: the GPU's compute capability",
    "python": "kp_dependencies: the Python requirement",
    "requires": "kp_dependencies: the package requirements",
    "os": "kp_dependencies: the operating system",
    "custom_ops": "kp_dependencies: custom operators and layers",
    "vulnerabilities": "kp_dependencies: known advisories (needs --kp-osv-db)",
    "dependency_licenses": "kp_license(licenses='dependencies'): the dependencies' licenses",
    "claims": "kp_claims: the card's [claims] against the measurement",
    "speed": "speed gates and kp_bench (skipped under xdist)",
    "onnx": "the ONNX Runtime parity row (kp_parity)",
    "exported": "the torch.export parity row (kp_parity)",
}
# A group name also requires its members.
GROUPS: dict[str, frozenset[str]] = {"gpu": frozenset({"fp16", "vram", "cuda", "gpu_arch"})}

# JUnit property names (``record_property`` style: one (name, value) per entry)
NOT_RUN_PROPERTY = "kpmodel not run"  # value "NAME: reason"
RAN_PROPERTY = "kpmodel ran"  # value "NAME"

# kp_dependencies / kp_license sub-check -> requirable name
_SUBCHECKS = {"license.dependencies": "dependency_licenses"}
# kp_thresholds argument -> requirable name
_THRESHOLD_NAMES = {"vram_mib": "vram", "max_drop_fp16": "fp16", "max_drop_bf16": "bf16"}
_SPEED_ARGS = ("fps", "latency_p50_ms", "latency_p90_ms")


def parse(value: str | Iterable[str] | None, flag: str = "--kp-require") -> frozenset[str]:
    """``"gpu, fp16 vram"`` -> the names as given; an unknown name is one message listing the
    valid ones (and the closest, for a typo)."""
    if value is None:
        return frozenset()
    words = re.split(r"[,\s]+", value) if isinstance(value, str) else list(value)
    names = [w.strip() for w in words if w and w.strip()]
    unknown = [n for n in names if n not in REQUIRABLE]
    if unknown:
        hints = ", ".join(
            f"{n!r}" + (f" ({hint.strip()})" if (hint := did_you_mean(n, REQUIRABLE)) else "")
            for n in unknown
        )
        raise KpModelError(
            f"{flag}: unknown check {hints}; valid names: {', '.join(sorted(REQUIRABLE))}"
        )
    return frozenset(names)


def expand(names: Iterable[str]) -> frozenset[str]:
    """The names with their groups' members: whose skips fail. Only the names given must also
    be evaluated by some test (``gpu`` asks no fp16 test of a spec that has none)."""
    out = set(names)
    for name in names:
        out |= GROUPS.get(name, frozenset())
    return frozenset(out)


@dataclass(frozen=True)
class Outcome:
    """Which named checks one evaluation ran, and which it could not run (name -> reason)."""

    ran: frozenset[str] = frozenset()
    not_run: tuple[tuple[str, str], ...] = ()

    def properties(self) -> list[tuple[str, str]]:
        props = [(RAN_PROPERTY, name) for name in sorted(self.ran)]
        props += [(NOT_RUN_PROPERTY, f"{name}: {reason}") for name, reason in self.not_run]
        return props

    def failures(self, required: frozenset[str], flag: str = "--kp-require") -> list[str]:
        """The not-run entries the run requires, as failure messages."""
        return [
            f"{name} did not run and {flag} requires it: {reason}"
            for name, reason in self.not_run
            if name in required
        ]


def _skip_reason(result: Any) -> str:
    """The reason a check gave for what it skipped (whole, or partial as an info finding)."""
    if getattr(result, "skipped", None):
        return str(result.skipped)
    for f in getattr(result, "findings", ()):
        if f.severity == "info" and f.message.startswith("skipped: "):
            return f.message.removeprefix("skipped: ")
    return "not evaluated"


def of_marker(marker: str, kwargs: Mapping[str, Any], result: Any) -> Outcome:
    """What one ``kp_*`` marker evaluation (a ``CheckResult``) ran and did not run."""
    ran: set[str] = set()
    not_run: list[tuple[str, str]] = []
    if marker == "kp_thresholds":
        names = [g.name for g in result.gates]
        gate_for = {
            "vram_mib": lambda n: n.startswith("peak VRAM"),
            "max_drop_fp16": lambda n: n.endswith(" drop fp16"),
            "max_drop_bf16": lambda n: n.endswith(" drop bf16"),
        }
        for arg, name in _THRESHOLD_NAMES.items():
            if kwargs.get(arg) is None:
                continue
            if any(gate_for[arg](n) for n in names):
                ran.add(name)
            else:
                not_run.append((name, _skip_reason(result)))
        if any(kwargs.get(a) is not None for a in _SPEED_ARGS):
            ran.add("speed")
    elif marker in ("kp_dependencies", "kp_license"):
        for sub in getattr(result, "subchecks", ()):
            name = _SUBCHECKS.get(sub.name, sub.name)
            if name not in REQUIRABLE:
                continue
            if sub.status == "skipped":
                not_run.append((name, sub.reason))
            else:
                ran.add(name)
    elif marker == "kp_provenance":
        sig = [f for f in result.findings if f.check == "provenance.signature"]
        verified = any(f.severity == "fail" or "key_id" in f.details for f in sig)
        if verified:  # a failed signature check ran too: it already fails the test
            ran.add("signature")
        else:
            reason = sig[0].message if sig else "no signature check"
            not_run.append(("signature", reason))
    elif marker == "kp_claims":
        if result.skipped:
            not_run.append(("claims", str(result.skipped)))
        else:
            ran.add("claims")
    if result.skipped and not not_run:  # any other whole skip is listed under the marker's name
        not_run.append((marker.removeprefix("kp_"), str(result.skipped)))
    return Outcome(frozenset(ran), tuple(not_run))


def of_precision(precision: str, skipped: str | None) -> Outcome:
    """``kp_precision_drop(precision)`` or a ``kp_bench`` at that precision."""
    name = precision if precision in REQUIRABLE else "speed"
    if skipped:
        return Outcome(not_run=((name, skipped),))
    return Outcome(ran=frozenset({name}))


def of_parity(rows: Iterable[Any]) -> Outcome:
    """The parity table's variants that are requirable (fp16, bf16, onnx, exported)."""
    ran: set[str] = set()
    not_run: list[tuple[str, str]] = []
    for row in rows:
        if row.variant not in REQUIRABLE:
            continue
        if row.status == "skipped":
            not_run.append((row.variant, f"parity row skipped: {row.reason}"))
        else:
            ran.add(row.variant)
    return Outcome(frozenset(ran), tuple(not_run))


@dataclass
class NotRun:
    name: str
    nodeid: str  # "" for the run as a whole
    reason: str
    required: bool

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "nodeid": self.nodeid, "reason": self.reason,
                "required": self.required}  # fmt: skip


@dataclass
class Ledger:
    """The run's record, collected from the test reports' properties. ``required``: the names
    as given (``parse``)."""

    required: frozenset[str] = frozenset()
    ran: set[str] = field(default_factory=set)
    entries: dict[tuple[str, str, str], NotRun] = field(default_factory=dict)

    def add(self, nodeid: str, properties: Iterable[tuple[str, Any]]) -> None:
        for key, value in properties:
            if key == RAN_PROPERTY:
                self.ran.add(str(value))
            elif key == NOT_RUN_PROPERTY:
                name, _, reason = str(value).partition(": ")
                entry = NotRun(name, nodeid, reason, name in expand(self.required))
                self.entries.setdefault((nodeid, name, reason), entry)

    def never_evaluated(self, kp: Any | None) -> list[NotRun]:
        """Required names no test of the run evaluated (or, for ``gpu``, a run off CUDA).
        ``kp``: the run (a ``KpSession``), None when there is no model."""
        out = []
        evaluated = self.ran | {e.name for e in self.entries.values()}
        for name in sorted(self.required):
            if name == "gpu":
                device = _device(kp)
                if device is not None and device.startswith("cuda"):
                    continue
                why = "no --kp-model" if kp is None else f"this run uses {device}"
                out.append(NotRun("gpu", "", f"the run is not on a CUDA device: {why}", True))
            elif name not in evaluated:
                why = "" if kp is not None else " (no --kp-model)"
                out.append(NotRun(name, "", f"no test of this run checks it{why}", True))
        return out

    def not_run(self, kp: Any | None) -> list[NotRun]:
        return list(self.entries.values()) + self.never_evaluated(kp)


def _device(kp: Any | None) -> str | None:
    if kp is None:
        return None
    try:
        return str(kp.device)
    except KpModelError as exc:  # the device itself is unusable: say so
        return f"no usable device ({exc})"
