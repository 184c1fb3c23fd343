"""Security: ``kp_security`` checks, the static scans of the weights and what the runtime
guard blocked or recorded."""

from __future__ import annotations

from collections.abc import Mapping

from ..markup import as_dict, as_list, badge, details, esc, fmt, generic, table
from ..page import Page
from ..verdicts import check_block, checks_for, findings_table


def render(page: Page) -> str:
    checks = checks_for(page.report, "security")
    sec = page.report.get("security")
    if not checks and not sec:
        return ""
    out = [check_block(c) for c in checks]
    sec = as_dict(sec)
    scans = []
    for key in ("scans", "scan"):
        scans += [s for s in as_list(sec.get(key)) if isinstance(s, Mapping)]
    if not scans and "verdict" in sec:
        scans = [sec]
    if scans:
        rows = [
            (f"<code>{esc(s.get('path'))}</code>", esc(s.get("kind")),
             badge(str(s.get("verdict", "info"))), fmt(s.get("size")), fmt(s.get("tensors")),
             fmt(len(as_list(s.get("globals")))), fmt(len(as_list(s.get("findings")))))
            for s in scans
        ]  # fmt: skip
        out.append("<h3>Static scan</h3>"
                   + table(("file", "kind", "verdict", "bytes", "tensors", "globals", "findings"), rows))  # fmt: skip
        for s in scans:
            out.append(findings_table(as_list(s.get("findings"))))
            glob = as_list(s.get("globals"))
            if glob:
                out.append(details(f"Globals imported by {esc(s.get('path'))} ({len(glob)})",
                                   "<ul class=\"cols\">" + "".join(f"<li><code>{esc(g)}</code></li>" for g in glob) + "</ul>"))  # fmt: skip
    events = [
        e
        for key in ("events", "guard", "runtime")
        for e in as_list(sec.get(key))
        if isinstance(e, Mapping)
    ]
    if events:
        rows = [
            (badge("fail" if e.get("blocked") else "warn", "blocked" if e.get("blocked") else "recorded"),
             esc(e.get("category")), f"<code>{esc(e.get('event'))}</code>",
             esc(", ".join(str(a) for a in as_list(e.get("args")))[:200]), esc(e.get("reason")),
             esc((as_list(e.get("stack")) or [""])[-1]))
            for e in events
        ]  # fmt: skip
        out.append("<h3>Runtime guard</h3>" + table(("action", "category", "event", "arguments", "reason", "where"), rows))  # fmt: skip
    known = ("scans", "scan", "events", "guard", "runtime")
    rest = {} if "verdict" in sec else {k: v for k, v in sec.items() if k not in known}
    if rest:
        out.append(details("Other security data", generic(rest)))
    return "".join(out)
