"""``ModelDiff.render()``: the diff as a compact text table, for ``kpmodel diff``."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .diff import ModelDiff, Side


def render_diff(d: ModelDiff, top: int = 8) -> str:
    """A compact text table for the terminal."""
    m, b = d.model.card.model, d.base.card.model
    lines = [
        f"model  {m.name} {m.version}  ({d.model.card.path})".rstrip(),
        f"base   {b.name} {b.version}  ({d.base.card.path})".rstrip(),
    ]
    lines.append("params " + _vs(d.model.params, d.base.params, _int) + _note(d.model, d.base))
    c, h, w = d.flops_input
    lines.append(
        "FLOPs  "
        + _vs(d.model.flops, d.base.flops, _giga)
        + f"  (one {c}x{h}x{w} image, eval, seed {d.flops_seed})"
    )
    s = d.summary()
    lines.append(
        f"tensors {s['added']} added, {s['removed']} removed, {s['reshaped']} reshaped, "
        f"{s['changed']} changed, {s['frozen']} identical; layers: {s['frozen_layers']} of "
        f"{s['layers']} frozen"
    )
    rows = [("component", "params", "Δparams", "added", "removed", "reshaped", "changed",
             "frozen", "rel.Δ")]  # fmt: skip
    for g in d.components():
        rows.append(
            (
                g["name"],
                _int(g["params"]),
                _signed(g["params"] - g["base_params"]),
                str(g["added"]),
                str(g["removed"]),
                str(g["reshaped"]),
                str(g["changed"]),
                str(g["frozen"]),
                _rel(g["rel_change"]),
            )
        )
    lines.append("")
    lines += _table(rows)
    for label, items in (
        ("added", [f"{t.name} {_shape(t.shape)}" for t in d.added]),
        ("removed", [f"{t.name} {_shape(t.base_shape)}" for t in d.removed]),
        (
            "reshaped",
            [f"{t.name} {_shape(t.base_shape)} -> {_shape(t.shape)}" for t in d.reshaped],
        ),
    ):
        if items:
            lines.append("")
            lines.append(f"{label} ({len(items)}):")
            lines += [f"  {i}" for i in items[:top]]
            if len(items) > top:
                lines.append(f"  ... and {len(items) - top} more")
    moved = sorted(
        (layer for layer in d.layers if layer.status == "changed"),
        key=lambda layer: -(layer.rel_change if layer.rel_change is not None else math.inf),
    )
    if moved:
        lines.append("")
        lines.append(f"most changed layers (of {len(moved)}):")
        lines += [f"  {_rel(layer.rel_change):>8}  {layer.name}" for layer in moved[:top]]
    if d._findings:
        lines.append("")
        lines.append("modifications check:")
        lines += [f"  {f.severity:<4}  {f.message}" for f in d._findings]
    return "\n".join(lines)


def _int(x: int | None) -> str:
    return "-" if x is None else f"{x:,}"


def _signed(x: int) -> str:
    return "0" if x == 0 else f"{x:+,}"


def _giga(x: int | None) -> str:
    return "-" if x is None else f"{x / 1e9:.3f} G"


def _rel(x: float | None) -> str:
    return "-" if x is None else f"{x:.4f}"


def _shape(s) -> str:
    return "(" + ", ".join(str(i) for i in s) + ")" if s is not None else "()"


def _vs(a, b, fmt) -> str:
    out = f"{fmt(a)} vs base {fmt(b)}"
    if a is not None and b is not None and b:
        out += f" ({(a - b) / b:+.1%})"
    return out


def _note(a: Side, b: Side) -> str:
    notes = [n for n in (a.note, b.note) if n]
    return f"  [{'; '.join(notes)}]" if notes else ""


def _table(rows: list[tuple[str, ...]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    out = []
    for r in rows:
        cells = [r[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(r[1:], widths[1:], strict=True)
        ]
        out.append("  ".join(cells).rstrip())
    return out
