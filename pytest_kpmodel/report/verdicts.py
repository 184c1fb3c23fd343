"""What the report's checks and gates say, and where on the page: a marker's checks belong to
one section (``MARKER_SECTIONS``), a gate to the section of its concern (``CONCERN_SECTIONS``;
the rest stay with the checks)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .markup import as_dict, as_list, badge, esc, fmt_value, note, short_json, signed_value, table

MARKER_SECTIONS = {
    "kp_provenance": "provenance",
    "kp_license": "license",
    "kp_dependencies": "license",
    "kp_security": "security",
}
CONCERN_SECTIONS = {"accuracy": "accuracy", "speed": "speed", "robustness": "robustness"}


def check_status(c: Mapping[str, Any]) -> str:
    if c.get("skipped"):
        return "skip"
    return "pass" if c.get("passed") else "fail"


def checks_of(report: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [c for c in as_list(report.get("checks")) if isinstance(c, Mapping)]


def gates_of(report: Mapping[str, Any], section: str) -> list[Mapping[str, Any]]:
    """Gates whose concern maps to ``section`` ("checks" takes the rest), repeats once."""
    out, seen = [], set()
    for c in checks_of(report):
        for g in as_list(c.get("gates")):
            if not isinstance(g, Mapping):
                continue
            where = CONCERN_SECTIONS.get(str(g.get("concern", "")), "checks")
            key = short_json(g, 10_000)
            if where == section and key not in seen:
                seen.add(key)
                out.append(g)
    return out


def checks_for(report: Mapping[str, Any], section: str) -> list[Mapping[str, Any]]:
    return [c for c in checks_of(report) if MARKER_SECTIONS.get(str(c.get("marker"))) == section]


def gates_table(gates: Sequence[Mapping[str, Any]]) -> str:
    rows = []
    for g in gates:
        unit = esc(g.get("unit", ""))
        rows.append(
            (
                esc(g.get("name")),
                fmt_value(g.get("value")) + unit,
                f"{esc(g.get('op', '>='))} {fmt_value(g.get('threshold'))}{unit}",
                signed_value(g.get("margin")),
                fmt_value(g.get("baseline")),
                badge("pass" if g.get("passed") else "fail"),
            )
        )
    return table(("gate", "value", "threshold", "margin", "baseline", "verdict"), rows, "gates")


def findings_table(findings: Sequence[Any]) -> str:
    rows = []
    for f in findings:
        if not isinstance(f, Mapping):
            continue
        det = as_dict(f.get("details"))
        extra = f'<div class="details">{esc(short_json(det))}</div>' if det else ""
        sev = str(f.get("severity", "fail"))
        rows.append((badge(sev, sev), esc(f.get("check")), esc(f.get("message")) + extra))
    return table(("severity", "check", "message"), rows, "findings")


def check_block(c: Mapping[str, Any]) -> str:
    """One check: header with the verdict, sub-checks, findings, gates."""
    status = check_status(c)
    head = (
        f'<div class="check-head">{badge(status)} <code>{esc(c.get("marker") or c.get("check"))}'
        f'</code> <span class="nodeid">{esc(c.get("nodeid"))}</span></div>'
    )
    parts = [head]
    if c.get("skipped"):
        parts.append(note("skipped: " + esc(c["skipped"])))
    subs = [s for s in as_list(c.get("subchecks")) if isinstance(s, Mapping)]
    if subs:
        parts.append(
            table(
                ("sub-check", "status", "reason"),
                [
                    (esc(s.get("name")), badge(str(s.get("status", "info"))), esc(s.get("reason")))
                    for s in subs
                ],  # fmt: skip
                "subchecks",
            )
        )
    parts.append(findings_table(as_list(c.get("findings"))))
    gates = [g for g in as_list(c.get("gates")) if isinstance(g, Mapping)]
    if gates:
        parts.append(gates_table(gates))
    return f'<div class="check {status}">{"".join(parts)}</div>'
