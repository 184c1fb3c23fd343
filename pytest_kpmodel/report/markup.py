"""HTML pieces for the report page: escaping, numbers for people, tables, figures, notes.

Every string from the report goes through ``esc`` (``fmt`` escapes what is not a number):
cards and findings come from third parties. Cells handed to ``table`` are HTML already.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from . import plots


def esc(x: Any) -> str:
    return html.escape("" if x is None else str(x), quote=True)


def fmt(x: Any, digits: int = 3) -> str:
    """Numbers for people: 3 decimals below 100, one above; '–' for nothing."""
    if x is None:
        return "–"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int):
        return f"{x:,}"
    if isinstance(x, float):
        if not math.isfinite(x):
            return "–"
        if abs(x) >= 100:
            return f"{x:,.1f}"
        return f"{x:.{digits}f}"
    return esc(x)


def fmt_signed(x: Any, digits: int = 3) -> str:
    v = plots.num(x)
    if v is None:
        return "–"
    magnitude = abs(x) if isinstance(x, int) else abs(v)
    return ("+" if v >= 0 else "−") + fmt(magnitude, digits)


def pct(x: Any) -> str:
    v = plots.num(x)
    if v is None:
        return "–"
    return f"{v:.0%}" if round(v * 100, 6).is_integer() else f"{v:.1%}"


def fmt_value(x: Any) -> str:
    """A measured value with a sensible number of digits (gates mix AP, ms, FPS, MiB)."""
    v = plots.num(x)
    if v is None:
        return "–"
    a = abs(v)
    digits = 3 if a < 10 else (2 if a < 100 else 1)
    return f"{v:,.{digits}f}"


def badge(status: str, text: str | None = None) -> str:
    """pass / FAIL / skip / warn / info / ok / unsafe... as a coloured pill."""
    cls = {
        "pass": "pass",
        "passed": "pass",
        "ok": "pass",
        "clean": "pass",
        "fail": "fail",
        "failed": "fail",
        "unsafe": "fail",
        "skip": "skip",
        "skipped": "skip",
        "warn": "warn",
        "unverifiable": "warn",
        "unsupported": "warn",
        "info": "info",
    }.get(status.lower(), "info")
    label = text if text is not None else ("FAIL" if cls == "fail" else status)
    return f'<span class="badge {cls}">{esc(label)}</span>'


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], cls: str = "") -> str:
    """Headers are escaped; cells are HTML already (escape them with ``esc``/``fmt``)."""
    if not rows:
        return ""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return (
        f'<div class="tablewrap"><table class="{esc(cls)}"><thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table></div>"
    )


def kv_table(pairs: Sequence[tuple[str, str]]) -> str:
    rows = [(esc(k), v) for k, v in pairs if v not in (None, "")]
    if not rows:
        return ""
    body = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows)
    return f'<table class="kv"><tbody>{body}</tbody></table>'


def details(summary: str, inner: str, open_: bool = False) -> str:
    if not inner:
        return ""
    return f"<details{' open' if open_ else ''}><summary>{summary}</summary>{inner}</details>"


def figure(uri: str | None, caption: str = "", alt: str = "") -> str:
    if not uri:
        return ""
    cap = f"<figcaption>{caption}</figcaption>" if caption else ""
    return f'<figure><img src="{esc(uri)}" alt="{esc(alt or "chart")}">{cap}</figure>'


def note(text: str, cls: str = "note") -> str:
    return f'<p class="{cls}">{text}</p>'


def short_json(x: Any, limit: int = 300) -> str:
    try:
        s = json.dumps(x, default=str, sort_keys=True)
    except (TypeError, ValueError):
        s = str(x)
    return s if len(s) <= limit else s[: limit - 1] + "…"


def as_dict(x: Any) -> Mapping[str, Any]:
    return x if isinstance(x, Mapping) else {}


def as_list(x: Any) -> list[Any]:
    if isinstance(x, Mapping):
        return [x]
    return list(x) if isinstance(x, Sequence) and not isinstance(x, str | bytes) else []


def signed_value(x: Any) -> str:
    v = plots.num(x)
    if v is None:
        return "–"
    return ("+" if v >= 0 else "−") + fmt_value(abs(v))


def delta_html(x: float | None) -> str:
    if x is None:
        return "–"
    cls = "up" if x > 0 else ("down" if x < 0 else "")
    return f'<span class="{cls}">{fmt_signed(x)}</span>'


def giga(x: Any) -> str:
    v = plots.num(x)
    return "–" if v is None else f"{v / 1e9:.2f} GFLOPs"


def shape_text(s: Any) -> str:
    items = as_list(s)
    return "×".join(str(x) for x in items) if items else ""


def meta_caption(a: Mapping[str, Any]) -> str:
    meta = as_dict(a.get("meta"))
    bits = []
    for k in ("recall", "mean_oks", "missed", "false_positives", "severity", "oks", "score"):
        v = meta.get(k)
        if isinstance(v, int | float) and not isinstance(v, bool):
            bits.append(f"{k.replace('_', ' ')} {fmt(v, 2)}")
    return f'<br><span class="small">{esc(", ".join(bits))}</span>' if bits else ""


def generic(x: Any, depth: int = 0) -> str:
    """Any JSON value as nested key/value tables (for sections without a dedicated view)."""
    if isinstance(x, Mapping):
        if depth > 3:
            return f"<code>{esc(short_json(x))}</code>"
        return kv_table([(str(k), generic(v, depth + 1)) for k, v in x.items()])
    if isinstance(x, list):
        if all(not isinstance(v, Mapping | list) for v in x):
            return esc(", ".join(str(v) for v in x[:50])) + (" …" if len(x) > 50 else "")
        return "<ol>" + "".join(f"<li>{generic(v, depth + 1)}</li>" for v in x[:50]) + "</ol>"
    if isinstance(x, float):
        return fmt(x)
    return esc(x)
