"""Checks: one row per marker evaluation, with its verdict and what it found, then the
gates no other section shows."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..markup import as_list, badge, esc, table
from ..page import Page
from ..verdicts import MARKER_SECTIONS, check_status, checks_of, gates_of, gates_table


def render(page: Page) -> str:
    checks = checks_of(page.report)
    if not checks:
        return ""
    rows = []
    for c in checks:
        st = check_status(c)
        if st == "skip":
            what = "skipped: " + esc(c.get("skipped"))
        else:
            fails = [f.get("message") for f in as_list(c.get("findings"))
                     if isinstance(f, Mapping) and f.get("severity") == "fail"]  # fmt: skip
            what = "<br>".join(esc(m) for m in fails[:5])
            if len(fails) > 5:
                what += f"<br>… {len(fails) - 5} more"
            if not what:
                what = esc(_pass_summary(c))
        target = MARKER_SECTIONS.get(str(c.get("marker")))
        marker = esc(c.get("marker") or c.get("check"))
        marker = f'<a href="#{target}">{marker}</a>' if target else marker
        rows.append(
            (
                badge(st),
                f"<code>{marker}</code>",
                f'<span class="nodeid">{esc(c.get("nodeid"))}</span>',
                what,
            )
        )
    body = table(("verdict", "marker", "test", "outcome"), rows, "checks")
    other_gates = gates_of(page.report, "checks")
    if other_gates:
        body += "<h3>Other gates</h3>" + gates_table(other_gates)
    return body


def _pass_summary(c: Mapping[str, Any]) -> str:
    """What a check without failures established, in a few words."""
    subs = [s for s in as_list(c.get("subchecks")) if isinstance(s, Mapping)]
    if subs:
        return ", ".join(f"{s.get('name')} {s.get('status')}" for s in subs)
    gates = [g for g in as_list(c.get("gates")) if isinstance(g, Mapping)]
    if gates:
        return f"{len(gates)} gate(s) met"
    notes = [f for f in as_list(c.get("findings")) if isinstance(f, Mapping)]
    if notes:
        return "; ".join(str(f.get("message")) for f in notes[:3])
    return "no findings"
