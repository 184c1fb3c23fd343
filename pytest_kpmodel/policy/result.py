"""The result of ``kp_license`` and ``kp_dependencies``: findings plus one status per sub-check.

A check runs several sub-checks through an ``Assembler``. Each sub-check returns its findings,
or raises ``SkipCheck`` with the reason when it cannot run on this machine (no GPU, no
vulnerability database...): never a silent pass. The result's ``skipped`` is set only when
*every* sub-check asked was skipped (or nothing was asked at all), so the plugin skips the test;
otherwise the test passes or fails on the findings, and each skipped sub-check also appears as
an ``info`` finding whose ``details["skipped"]`` is the reason, so it reaches ``kp-report.json``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from ..findings import CheckResult, Finding

Status = Literal["passed", "failed", "skipped"]


class SkipCheck(Exception):
    """A sub-check cannot run here; the message says why (never a silent pass)."""


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


class Assembler:
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
