"""The page header: model, digest, the verdict and its counts (checks and gates)."""

from __future__ import annotations

from collections.abc import Mapping

from ..markup import as_dict, as_list, badge, esc, kv_table
from ..page import Page
from ..verdicts import check_status, checks_of


def render(page: Page) -> str:
    r = page.report
    model = as_dict(r.get("model"))
    checks = checks_of(r)
    counts = {"pass": 0, "fail": 0, "skip": 0}
    for c in checks:
        counts[check_status(c)] += 1
    gates = [g for c in checks for g in as_list(c.get("gates")) if isinstance(g, Mapping)]
    g_fail = sum(1 for g in gates if not g.get("passed"))
    if model.get("error"):
        title = "model card could not be read"
    else:
        title = f"{model.get('name') or 'unnamed model'} {model.get('version') or ''}".strip()
    overall = "fail" if counts["fail"] else ("pass" if counts["pass"] else "skip")
    verdict = {"fail": "NOT ACCEPTED", "pass": "ACCEPTED", "skip": "NOTHING CHECKED"}[overall]
    digest = model.get("sha256")
    pinned = model.get("sha256_pinned")
    digest_html = f"<code>{esc(digest)}</code>" if digest else "–"
    if digest and pinned:
        digest_html += " " + (badge("pass", "matches card") if digest == pinned
                              else badge("fail", "differs from card"))  # fmt: skip
    facts = kv_table(
        [
            ("model", esc(title)),
            ("format", esc(model.get("format"))),
            ("weights sha256", digest_html),
            ("card", f"<code>{esc(model.get('card'))}</code>" if model.get("card") else ""),
            ("error", esc(model.get("error")) if model.get("error") else ""),
        ]
    )
    tiles = "".join(
        f'<div class="tile {cls}"><div class="n">{n}</div><div>{label}</div></div>'
        for cls, n, label in (
            ("pass", counts["pass"], "checks passed"),
            ("fail", counts["fail"], "checks failed"),
            ("skip", counts["skip"], "checks skipped"),
            ("fail" if g_fail else "pass", f"{len(gates) - g_fail}/{len(gates)}", "gates met"),
        )
    )
    return (
        f'<header id="summary" class="summary {overall}"><div class="verdict">'
        f"{badge(overall, verdict)}</div><h1>{esc(title)}</h1>{facts}"
        f'<div class="tiles">{tiles}</div></header>'
    )
