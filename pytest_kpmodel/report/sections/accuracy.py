"""Accuracy: COCO stats with bootstrap intervals beside the baseline's, PR curves, per-keypoint
AP and OKS, error analysis, PCK, flip consistency and the accuracy gates."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .. import plots
from ..markup import (
    as_dict,
    as_list,
    delta_html,
    details,
    esc,
    figure,
    fmt,
    kv_table,
    note,
    pct,
    table,
)
from ..page import Page
from ..verdicts import gates_of, gates_table


def render(page: Page) -> str:
    m = as_dict(page.report.get("metrics"))
    gates = gates_of(page.report, "accuracy")
    arts = page.artifacts_for("accuracy")
    has = any(
        isinstance(m.get(k), Mapping) and m.get(k)
        for k in ("bbox", "keypoints", "per_keypoint", "pr_curves")
    )
    if not (has or gates or arts):
        return ""
    base = page.baseline_metrics()
    ds = as_dict(m.get("dataset"))
    out = [_what_was_evaluated(page, m, base)]
    if gates:
        out.append("<h3>Accuracy gates</h3>" + gates_table(gates))
    out.append(_stats(m, base))
    out.append(_per_keypoint(as_dict(m.get("per_keypoint")), base))
    out.append(_errors(as_dict(m.get("keypoint_errors"))))
    out.append(_pck_and_flips(m))
    for a in arts:
        out.append(page.artifact_figure(a))
    notes = as_list(ds.get("notes"))
    if notes:
        out.append(note("Dataset notes: " + "; ".join(esc(n) for n in notes)))
    return "".join(out)


def _what_was_evaluated(page: Page, m: Mapping[str, Any], base: Mapping[str, Any]) -> str:
    ds, eng = as_dict(m.get("dataset")), as_dict(m.get("engine"))
    if not (ds or eng):
        return ""
    bits = []
    if ds.get("images") is not None:
        bits.append(f"{fmt(ds.get('images'))} images, {fmt(ds.get('annotations'))} annotations, "
                    f"{fmt(ds.get('results'))} detections evaluated")  # fmt: skip
    if eng.get("name"):
        bits.append(f"engine {esc(eng.get('name'))} {esc(eng.get('version', ''))}")
    if base:
        bits.append(f"baseline: {esc(page.baseline_name())}")
    return note("; ".join(bits))


def _stats(m: Mapping[str, Any], base: Mapping[str, Any]) -> str:
    """Boxes and keypoints stats with their intervals (and the baseline's), the AP interval
    chart and the PR curves."""
    boot = as_dict(m.get("bootstrap"))
    stat_tables = []
    for t, title in (("bbox", "Boxes"), ("keypoints", "Keypoints")):
        stats = as_dict(m.get(t))
        if stats:
            rows = _stat_rows(stats, as_dict(boot.get(t)), as_dict(base.get(t)), bool(base))
            heads = ["stat", "model", f"{pct(boot.get('confidence'))} CI" if boot else "CI"]
            if base:
                heads += ["baseline", "Δ"]
            stat_tables.append(f"<div><h3>{title}</h3>{table(heads, rows, 'num')}</div>")
    out = ['<div class="cols2">' + "".join(stat_tables) + "</div>"] if stat_tables else []
    out.append(
        figure(
            plots.ap_intervals(boot, as_dict(base.get("bootstrap")), base),
            "AP with bootstrap confidence intervals",
        )
    )
    out.append(figure(plots.pr_curves(m.get("pr_curves"), base.get("pr_curves")),
                      "Precision-recall curves (area all); dashed: baseline"))  # fmt: skip
    return "".join(out)


def _stat_rows(stats: Mapping[str, Any], ci: Mapping[str, Any], bstats: Mapping[str, Any],
               with_base: bool) -> list[list[str]]:  # fmt: skip
    rows = []
    for name, v in stats.items():
        val = plots.num(v)
        iv = as_dict(ci.get(name))
        ci_s = (f"[{fmt(plots.num(iv.get('low')))}, {fmt(plots.num(iv.get('high')))}]"
                if iv.get("low") is not None else "")  # fmt: skip
        bv = plots.num(bstats.get(name))
        # -1 is COCO's "no such objects": shown as n/a, never compared.
        delta = val - bv if val is not None and bv is not None and val >= 0 and bv >= 0 else None
        row = [esc(name), fmt(val) if val is None or val >= 0 else "n/a", ci_s]
        if with_base:
            row += [fmt(bv) if bv is None or bv >= 0 else "n/a", delta_html(delta)]
        rows.append(row)
    return rows


def _per_keypoint(pk: Mapping[str, Any], base: Mapping[str, Any]) -> str:
    if not pk:
        return ""
    return (
        "<h3>Per keypoint</h3>"
        + figure(
            plots.per_keypoint(pk, base.get("per_keypoint")),
            "Per-keypoint AP (only that keypoint in the OKS) and mean OKS",
        )  # fmt: skip
        + details("Per-keypoint table", _per_keypoint_table(pk, as_dict(base.get("per_keypoint"))))
    )


def _errors(ke: Mapping[str, Any]) -> str:
    if not ke:
        return ""
    out = ["<h3>Error analysis</h3>"]
    out.append(figure(plots.keypoint_errors(ke),
                      "Shares of matched keypoints: good, jitter, inversion (left/right), "
                      "swap (another person's), miss"))  # fmt: skip
    overall = as_dict(ke.get("overall"))
    dets = as_dict(ke.get("detections"))
    if overall:
        rows = [(esc(k), pct(v) if k != "n" else fmt(v)) for k, v in overall.items()]
        rows += [(esc(k.replace("_", " ") + " (detections)"), pct(v) if k != "analysed" else fmt(v))
                 for k, v in dets.items()]  # fmt: skip
        out.append(details("Error shares overall", table(("error", "share"), rows, "num")))
    return "".join(out)


def _pck_and_flips(m: Mapping[str, Any]) -> str:
    out = []
    pck = as_dict(m.get("pck"))
    if pck:
        rows = [(esc(k), fmt(v) if isinstance(v, int) else fmt(plots.num(v)))
                for k, v in pck.items()]  # fmt: skip
        out.append("<h3>PCK</h3>" + table(("alpha / stat", "value"), rows, "num"))
    flip = as_dict(m.get("flip_consistency"))
    if flip:
        out.append("<h3>Flip consistency</h3>" + kv_table([(k, fmt(plots.num(v)) if not isinstance(v, Mapping) else "")
                                                          for k, v in flip.items() if not isinstance(v, Mapping)]))  # fmt: skip
    return "".join(out)


def _per_keypoint_table(pk: Mapping[str, Any], base: Mapping[str, Any]) -> str:
    first = next((r for r in pk.values() if isinstance(r, Mapping)), {})
    cols = [k for k in first if k not in ("sigma",)]
    rows = []
    for name, row in pk.items():
        if not isinstance(row, Mapping):
            continue
        cells = [esc(name), fmt(plots.num(row.get("sigma")))]
        cells += [fmt(row.get(k)) if k == "n" else fmt(plots.num(row.get(k))) for k in cols]
        if base:
            bap = plots.num(as_dict(base.get(name)).get("ap"))
            ap = plots.num(row.get("ap"))
            cells += [
                fmt(bap),
                delta_html(ap - bap if ap is not None and bap is not None else None),
            ]
        rows.append(cells)
    heads = ["keypoint", "sigma", *cols] + (["base ap", "Δ ap"] if base else [])
    return table(heads, rows, "num")
