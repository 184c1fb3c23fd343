"""What a check returns: findings (each one readable sentence), numeric gates, or a skip reason.

Every marker evaluation in the plugin turns a ``CheckResult`` into a pytest outcome: any failing
finding fails the test with all messages at once; a skip reason skips it; otherwise it passes.
The same objects feed the terminal summary and ``kp-report.json``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Severity = Literal["fail", "warn", "info"]


@dataclass(frozen=True)
class Finding:
    check: str  # dotted name of what was checked, e.g. "provenance.sha256"
    message: str  # one sentence a user can act on
    severity: Severity = "fail"
    details: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Gate:
    """A numeric requirement: ``value`` compared with ``threshold`` (``op`` is '>=' or '<=')."""

    concern: str  # accuracy | speed | robustness | ...
    name: str  # e.g. "keypoints AP"
    value: float
    threshold: float
    op: Literal[">=", "<="] = ">="
    baseline: float | None = None
    unit: str = ""

    @property
    def passed(self) -> bool:
        return self.value >= self.threshold if self.op == ">=" else self.value <= self.threshold

    @property
    def margin(self) -> float:
        return self.value - self.threshold if self.op == ">=" else self.threshold - self.value

    def describe(self) -> str:
        """E.g. 'keypoints AP 0.583 < 0.600 (-0.017)'."""
        rel = self.op if self.passed else {">=": "<", "<=": ">"}[self.op]
        sign = "+" if self.margin >= 0 else "-"
        return (
            f"{self.name} {_fmt(self.value)}{self.unit} {rel} {_fmt(self.threshold)}{self.unit} "
            f"({sign}{_fmt(abs(self.margin))})"
        )

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d.update(passed=self.passed, margin=self.margin)
        return d


@dataclass
class CheckResult:
    check: str  # marker or fixture name, e.g. "kp_thresholds"
    findings: list[Finding] = field(default_factory=list)
    gates: list[Gate] = field(default_factory=list)
    skipped: str | None = None  # reason, when the check could not run here

    @property
    def failures(self) -> list[str]:
        msgs = [f.message for f in self.findings if f.severity == "fail"]
        msgs += [g.describe() for g in self.gates if not g.passed]
        return msgs

    @property
    def passed(self) -> bool:
        return self.skipped is None and not self.failures

    def to_json(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "passed": self.passed,
            "skipped": self.skipped,
            "findings": [f.to_json() for f in self.findings]
            + [
                {"check": g.name, "message": g.describe(), "severity": "fail", "details": {}}
                for g in self.gates
                if not g.passed
            ],
            "gates": [g.to_json() for g in self.gates],
        }


def _fmt(x: float) -> str:
    if abs(x) >= 100:
        return f"{x:.1f}"
    return f"{x:.3f}"
