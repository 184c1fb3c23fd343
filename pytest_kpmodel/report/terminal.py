"""The ``kpmodel`` section at the end of a run: every gate evaluated, grouped by concern, and
the findings of failed checks; then every check that did not run (``not_run_lines``). Plain
text that fits 80 columns; colour only when the terminal reporter has markup.
"""

from __future__ import annotations

from typing import Any

COLUMNS = ("check", "value", "threshold", "margin", "baseline", "verdict")


def _num(x: Any) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:.1f}" if abs(x) >= 100 else f"{x:.3f}"
    return str(x)


def gate_rows(checks: list[dict[str, Any]]) -> dict[str, list[tuple[str, ...]]]:
    """concern -> rows, in the order the gates were evaluated; repeated gates shown once."""
    grouped: dict[str, list[tuple[str, ...]]] = {}
    seen: set[tuple[str, ...]] = set()
    for check in checks:
        for g in check.get("gates", []):
            op = g.get("op", ">=")
            margin = g["margin"]
            row = (
                g["name"],
                _num(g["value"]) + g.get("unit", ""),
                f"{op} {_num(g['threshold'])}",
                ("+" if margin >= 0 else "") + _num(margin),
                _num(g.get("baseline")),
                "pass" if g["passed"] else "FAIL",
            )
            if row in seen:
                continue
            seen.add(row)
            grouped.setdefault(g.get("concern", "other"), []).append(row)
    return grouped


def render(checks: list[dict[str, Any]]) -> list[str]:
    """Lines of the summary; gate rows end with their verdict ("pass" or "FAIL")."""
    lines: list[str] = []
    grouped = gate_rows(checks)
    if grouped:
        rows = [r for rs in grouped.values() for r in rs]
        widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(COLUMNS)]
        widths[0] = min(widths[0], 80 - sum(widths[1:]) - 2 * (len(COLUMNS) - 1))
        fmt = "  ".join(f"{{:<{w}}}" if i == 0 else f"{{:>{w}}}" for i, w in enumerate(widths))
        lines.append(fmt.format(*COLUMNS))
        for concern, rs in grouped.items():
            lines.append(f"[{concern}]")
            for r in rs:
                if len(r[0]) > widths[0]:  # a long name gets a line of its own
                    lines.append(r[0])
                    lines.append(fmt.format("", *r[1:]))
                else:
                    lines.append(fmt.format(*r))
    failed = [c for c in checks if not c.get("passed") and not c.get("skipped")]
    for c in failed:
        msgs = [f["message"] for f in c.get("findings", []) if f.get("severity") == "fail"]
        if msgs:
            lines.append(f"FAILED {c['marker']} in {c['nodeid']}:")
            lines += [f"  - {m}" for m in msgs]
    return lines  # what was skipped: not_run_lines


def not_run_lines(entries: list[dict[str, Any]], no_model: str | None = None) -> list[str]:
    """One line per check that did not run (``required.NotRun.to_json()`` entries), required
    ones first and marked; the tests skipped for ``no_model`` in one line."""
    lines: list[str] = []
    idle = [e for e in entries if no_model and e["reason"] == no_model and not e["required"]]
    rest = [e for e in entries if e not in idle]
    for e in sorted(rest, key=lambda e: not e["required"]):
        mark = "REQUIRED " if e["required"] else ""
        where = f" in {e['nodeid']}" if e["nodeid"] else " (the run)"
        lines.append(f"{mark}{e['name']}{where}: {e['reason']}")
    if idle:
        lines.append(f"{len(idle)} kp test(s): {no_model}")
    return lines


def summary_lines(kp: Any | None, not_run: list[dict[str, Any]], no_model: str | None = None):
    """The terminal summary as ``(text, style)``: style "=" or "-" makes ``text`` the title of a
    separator line of that character; otherwise "red", "green", "yellow" or None. ``kp`` is the
    run (a ``KpSession``), None when it was never built."""
    out: list[tuple[str, str | None]] = []
    lines = render(kp.checks) if kp is not None else []
    if lines:
        out.append(("kpmodel", "="))
        for line in lines:
            failed = line.endswith("FAIL") or line.startswith("FAILED")
            out.append((line, "red" if failed else "green" if line.endswith("pass") else None))
    not_run_text = not_run_lines(not_run, no_model=no_model)
    if not_run_text:
        out.append(("kpmodel: checks that did not run", "-"))
        out += [(line, "red" if "REQUIRED" in line else "yellow") for line in not_run_text]
    if kp is not None:
        out += [(f"kpmodel: warning: {warning}", "yellow") for warning in kp.warnings]
        if kp.settings.report is not None:
            out.append((f"kpmodel: report written to {kp.settings.report}", None))
    return out
