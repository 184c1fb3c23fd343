"""Model card & provenance: the card, claims against what was measured, ``kp_provenance``
checks, the diff against the base model and the backbone feature maps."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ...gates import ACCURACY
from .. import plots
from ..markup import (
    as_dict,
    as_list,
    badge,
    details,
    esc,
    fmt,
    fmt_signed,
    giga,
    kv_table,
    note,
    pct,
    shape_text,
    table,
)
from ..page import Page
from ..verdicts import check_block, check_status, checks_for, findings_table


def render(page: Page) -> str:
    r = page.report
    card = as_dict(r.get("card"))
    diff = as_dict(r.get("diff"))
    checks = checks_for(r, "provenance")
    fmaps = page.artifacts_for("provenance")
    if not (card or diff or checks or fmaps):
        return ""
    out = []
    if card:
        out.append(_card(page, card))
    claims = as_dict(card.get("claims"))
    if claims:
        out.append(_claims(page, claims))
    for c in checks:
        out.append(check_block(c))
    if diff:
        out.append("<h3>Changes against the base model</h3>" + _diff(diff))
    if fmaps:
        out.append(
            "<h3>Backbone feature maps</h3>"
            + note(
                "Per FPN level, the per-pixel maximum and mean over channels of the "
                "backbone's output on evaluation images (base model below the model when "
                "one was loaded, on the same colour scale). Features that follow the "
                "people and stay quiet on background suit your data."
            )  # fmt: skip
        )
        for a in fmaps:
            out.append(page.artifact_figure(a) + _fmap_meta(as_dict(a.get("meta"))))
    return "".join(out)


def _signature_status(page: Page) -> str:
    for c in checks_for(page.report, "provenance"):
        for f in as_list(c.get("findings")):
            if isinstance(f, Mapping) and str(f.get("check", "")).startswith(
                "provenance.signature"
            ):
                sev = str(f.get("severity", "fail"))
                return badge(sev, sev) + " " + esc(f.get("message"))
    checked = checks_for(page.report, "provenance")
    if any(check_status(c) == "pass" for c in checked):
        return badge("pass", "no signature finding") + " (kp_provenance passed)"
    return "not checked in this run"


def _card(page: Page, card: Mapping[str, Any]) -> str:
    m, p = as_dict(card.get("model")), as_dict(card.get("provenance"))
    lic, dep = as_dict(card.get("license")), as_dict(card.get("dependencies"))
    actual = as_dict(page.report.get("model")).get("sha256")
    pinned = m.get("sha256")
    if pinned and actual:
        digest = f"<code>{esc(pinned)}</code> " + (
            badge("pass", "weights match") if pinned == actual else badge("fail", "weights differ")
        )
    else:
        digest = f"<code>{esc(pinned)}</code>" if pinned else badge("warn", "no pinned digest")
    mods = as_list(p.get("modifications"))
    mods_html = "<ul>" + "".join(f"<li>{esc(x)}</li>" for x in mods) + "</ul>" if mods else ""
    req = ", ".join(str(x) for x in as_list(dep.get("requires")))
    deps = "; ".join(
        f"{k} {v}"
        for k, v in (
            ("python", dep.get("python")),
            ("requires", req),
            ("cuda", dep.get("cuda")),
            ("gpu arch", dep.get("gpu_arch")),
        )
        if v  # fmt: skip
    )
    return kv_table(
        [
            ("name", esc(f"{m.get('name', '')} {m.get('version', '')}".strip())),
            ("format", esc(m.get("format"))),
            (
                "architecture",
                f"<code>{esc(m.get('architecture'))}</code>" if m.get("architecture") else "",
            ),
            ("weights", f"<code>{esc(m.get('weights'))}</code>" if m.get("weights") else ""),
            ("pinned sha256", digest),
            (
                "source",
                esc(p.get("source")) if p.get("source") else badge("warn", "none given"),
            ),
            ("base model", f"<code>{esc(p.get('base'))}</code>" if p.get("base") else "none"),
            (
                "signature file",
                f"<code>{esc(p.get('signature'))}</code>" if p.get("signature") else "none",
            ),
            ("signature status", _signature_status(page)),
            ("modifications", mods_html),
            (
                "license",
                esc(lic.get("spdx")) if lic.get("spdx") else badge("warn", "none given"),
            ),
            ("dependencies", esc(deps)),
            ("card file", f"<code>{esc(card.get('path'))}</code>" if card.get("path") else ""),
        ]
    )


def _claims(page: Page, claims: Mapping[str, Any]) -> str:
    metrics = as_dict(page.report.get("metrics"))
    where = {name: f"{section}.{stat}" for name, (section, stat, _) in ACCURACY.items()}
    rows = []
    for k, v in claims.items():
        measured = plots.leaf(metrics, where.get(k, k))
        claimed = plots.num(v)
        delta = measured - claimed if measured is not None and claimed is not None else None
        rows.append((esc(k), fmt(claimed), fmt(measured), fmt_signed(delta)))
    return "<h3>Vendor claims vs measured</h3>" + table(
        ("claim", "card says", "measured here", "difference"), rows
    )


def _diff(d: Mapping[str, Any]) -> str:
    out = [_diff_summary(d), findings_table(as_list(d.get("findings")))]
    out += [_components(d), _structural(d), _layers(d)]
    frozen = as_list(d.get("frozen_layers"))
    if frozen:
        out.append(note(f"{len(frozen)} layer(s) identical to the base (frozen)."))
    return "".join(out)


def _diff_summary(d: Mapping[str, Any]) -> str:
    m, b = as_dict(d.get("model")), as_dict(d.get("base"))
    params, flops = as_dict(d.get("parameters")), as_dict(d.get("flops"))
    summary = as_dict(d.get("summary"))
    return kv_table(
        [
            ("model", esc(f"{m.get('name', '')} {m.get('version', '')}".strip())),
            ("base", esc(f"{b.get('name', '')} {b.get('version', '')}".strip())),
            (
                "parameters",
                f"{fmt(params.get('model'))} vs {fmt(params.get('base'))} "
                f"({fmt_signed(params.get('delta'), 0)}; {esc(params.get('counted', ''))})"
                if params
                else "",
            ),  # fmt: skip
            (
                "FLOPs",
                f"{giga(flops.get('model'))} vs {giga(flops.get('base'))} "
                f"(input {esc('x'.join(str(x) for x in as_list(flops.get('input'))))})"
                if flops.get("model") or flops.get("base")
                else "",
            ),  # fmt: skip
            ("tensors", esc(", ".join(f"{k} {v}" for k, v in summary.items()))),
        ]
    )


def _components(d: Mapping[str, Any]) -> str:
    comps = [c for c in as_list(d.get("components")) if isinstance(c, Mapping)]
    if not comps:
        return ""
    rows = [
        (f"<code>{esc(c.get('name'))}</code>", fmt(c.get("layers")), fmt(c.get("params")),
         fmt(c.get("base_params")), *(fmt(c.get(k)) for k in
         ("added", "removed", "reshaped", "changed", "frozen")), fmt(plots.num(c.get("rel_change"))))
        for c in comps
    ]  # fmt: skip
    return (
        "<h4>By component</h4>"
        + table(
            (
                "component",
                "layers",
                "params",
                "base params",
                "added",
                "removed",
                "reshaped",
                "changed",
                "frozen",
                "rel. change",
            ),
            rows,
            "num",
        )  # fmt: skip
    )


def _structural(d: Mapping[str, Any]) -> str:
    structural = []
    for key, label in (("added", "added"), ("removed", "removed")):
        for t in as_list(d.get(key)):
            if isinstance(t, Mapping):
                structural.append((badge("warn" if key == "added" else "fail", label),
                                   f"<code>{esc(t.get('name'))}</code>",
                                   esc(shape_text(t.get("shape"))), ""))  # fmt: skip
    for t in as_list(d.get("reshaped")):
        if isinstance(t, Mapping):
            structural.append((badge("warn", "reshaped"), f"<code>{esc(t.get('name'))}</code>",
                               esc(shape_text(t.get("shape"))), esc(shape_text(t.get("base_shape")))))  # fmt: skip
    if not structural:
        return ""
    return details(
        f"Structural changes ({len(structural)} tensors)",
        table(("change", "tensor", "shape", "base shape"), structural),
        open_=len(structural) <= 20,
    )


def _layers(d: Mapping[str, Any]) -> str:
    layers = [x for x in as_list(d.get("layers")) if isinstance(x, Mapping)]
    if not layers:
        return ""
    rows = [
        (f"<code>{esc(x.get('name'))}</code>", esc(x.get("status")), fmt(x.get("params")),
         fmt(x.get("base_params")), fmt(plots.num(x.get("rel_change"))))
        for x in layers[:500]
    ]  # fmt: skip
    more = note(f"… and {len(layers) - 500} more layers") if len(layers) > 500 else ""
    return details(f"All layers ({len(layers)})",
                   table(("layer", "status", "params", "base params", "rel. change"), rows, "num") + more)  # fmt: skip


def _fmap_meta(meta: Mapping[str, Any]) -> str:
    levels = as_dict(meta.get("levels"))
    if not levels:
        return ""
    base = as_dict(meta.get("base_levels"))
    cos = as_dict(meta.get("cosine_to_base"))
    rows = []
    for name, st in levels.items():
        st = as_dict(st)
        bst = as_dict(base.get(name))
        rows.append(
            (esc(name), esc(shape_text(st.get("shape"))), fmt(plots.num(st.get("mean"))),
             fmt(plots.num(st.get("max"))), pct(st.get("dead_channels")),
             fmt(plots.num(bst.get("mean"))) if bst else "–",
             fmt(plots.num(cos.get(name))) if cos else "–")
        )  # fmt: skip
    return details(
        "Level statistics",
        table(
            (
                "level",
                "shape C×H×W",
                "mean",
                "max",
                "dead channels",
                "base mean",
                "cosine to base",
            ),
            rows,
            "num",
        ),  # fmt: skip
    )
