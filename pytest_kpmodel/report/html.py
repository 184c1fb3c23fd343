"""``index.html``: the run's report for people, one self-contained page rendered from the
``kp-report.json`` dict.

    from pytest_kpmodel.report.html import render, write_html
    text = render(report, Assets(folder))   # str; nothing read from the network, ever
    path = write_html(report, folder)       # folder/index.html, written atomically

Self-contained: the CSS (``style.css``) is inlined, every chart is a ``data:image/png`` URI and
every artifact file (``report["artifacts"]``, see :mod:`.assets`) is read from the report
folder and inlined the same way; a Content-Security-Policy forbids any other load. Every string
from the report is HTML-escaped (cards and findings come from third parties).

Sections, each present only when its data exists (a run that only checked the license shows
the summary, the checks, "License & dependencies" and the run environment):

* summary: model, digest, verdict counts (checks pass/fail/skip, gates), per-section status;
* checks: one row per marker evaluation, with a pass/FAIL/skip badge;
* model card & provenance: ``card`` (see ``assets.card_section``), digest and signature status
  (from ``kp_provenance`` findings), claims vs measured, ``diff`` (``ModelDiff.to_json``),
  backbone feature maps (``feature_maps`` artifacts);
* license & dependencies: ``kp_license``/``kp_dependencies`` checks (``PolicyResult.to_json``:
  sub-checks and findings), the ``policy``/``sbom`` sections when present;
* security: ``kp_security`` checks, the ``security`` section (``ScanReport.to_json`` as
  ``scan``/``scans``, guard ``events``);
* accuracy: ``metrics`` (``KeypointMetrics.to_json``) with the baseline's (``baseline.metrics``,
  ``baseline_metrics`` or ``metrics.baseline``) side by side: stats with bootstrap intervals,
  PR curves, per-keypoint AP/OKS, error analysis, PCK, accuracy gates;
* speed: ``bench`` (``BenchResult.to_json`` entries), latency distribution, stage breakdown,
  ``parity`` (``ParityTable.to_json``: the variants table), speed gates;
* robustness: ``robustness`` = ``CorruptionEvalResult.to_dict()`` (or ``{"corruption": ...,
  "stability": [StabilityResult.to_dict()...], "trigger": TriggerScanResult.to_dict()}``),
  AP vs severity, mPC/rPC, failing examples (``robustness`` artifacts), robustness gates;
* sample predictions: ``gallery`` artifacts, worst first;
* run: environment, settings, warnings.

Anything malformed in one section shows as a note in that section; the page is still written.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import html as _html
import json
import math
from collections.abc import Callable, Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from . import plots
from .assets import Assets, section_of, write_text_atomic
from .json_report import REPORT_SCHEMA

HTML_NAME = "index.html"
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"

SECTION_TITLES = {
    "checks": "Checks",
    "provenance": "Model card & provenance",
    "license": "License & dependencies",
    "security": "Security",
    "accuracy": "Accuracy",
    "speed": "Speed",
    "robustness": "Robustness",
    "gallery": "Sample predictions",
    "other": "Other figures",
    "run": "Run",
}
MARKER_SECTIONS = {
    "kp_provenance": "provenance",
    "kp_license": "license",
    "kp_dependencies": "license",
    "kp_security": "security",
}
CONCERN_SECTIONS = {"accuracy": "accuracy", "speed": "speed", "robustness": "robustness"}


# -- small pieces --------------------------------------------------------------------------------
def esc(x: Any) -> str:
    return _html.escape("" if x is None else str(x), quote=True)


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


def _dict(x: Any) -> Mapping[str, Any]:
    return x if isinstance(x, Mapping) else {}


def _list(x: Any) -> list[Any]:
    if isinstance(x, Mapping):
        return [x]
    return list(x) if isinstance(x, Sequence) and not isinstance(x, str | bytes) else []


# -- checks ----------------------------------------------------------------------------------------
def check_status(c: Mapping[str, Any]) -> str:
    if c.get("skipped"):
        return "skip"
    return "pass" if c.get("passed") else "fail"


def checks_of(report: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [c for c in _list(report.get("checks")) if isinstance(c, Mapping)]


def gates_of(report: Mapping[str, Any], section: str) -> list[Mapping[str, Any]]:
    """Gates whose concern maps to ``section`` ("checks" takes the rest), repeats once."""
    out, seen = [], set()
    for c in checks_of(report):
        for g in _list(c.get("gates")):
            if not isinstance(g, Mapping):
                continue
            where = CONCERN_SECTIONS.get(str(g.get("concern", "")), "checks")
            key = short_json(g, 10_000)
            if where == section and key not in seen:
                seen.add(key)
                out.append(g)
    return out


def gates_table(gates: Sequence[Mapping[str, Any]]) -> str:
    rows = []
    for g in gates:
        unit = esc(g.get("unit", ""))
        rows.append(
            (
                esc(g.get("name")),
                fmt_value(g.get("value")) + unit,
                f"{esc(g.get('op', '>='))} {fmt_value(g.get('threshold'))}{unit}",
                _signed_value(g.get("margin")),
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
        det = _dict(f.get("details"))
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
    subs = [s for s in _list(c.get("subchecks")) if isinstance(s, Mapping)]
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
    parts.append(findings_table(_list(c.get("findings"))))
    gates = [g for g in _list(c.get("gates")) if isinstance(g, Mapping)]
    if gates:
        parts.append(gates_table(gates))
    return f'<div class="check {status}">{"".join(parts)}</div>'


def _pass_summary(c: Mapping[str, Any]) -> str:
    """What a check without failures established, in a few words."""
    subs = [s for s in _list(c.get("subchecks")) if isinstance(s, Mapping)]
    if subs:
        return ", ".join(f"{s.get('name')} {s.get('status')}" for s in subs)
    gates = [g for g in _list(c.get("gates")) if isinstance(g, Mapping)]
    if gates:
        return f"{len(gates)} gate(s) met"
    notes = [f for f in _list(c.get("findings")) if isinstance(f, Mapping)]
    if notes:
        return "; ".join(str(f.get("message")) for f in notes[:3])
    return "no findings"


def checks_for(report: Mapping[str, Any], section: str) -> list[Mapping[str, Any]]:
    return [c for c in checks_of(report) if MARKER_SECTIONS.get(str(c.get("marker"))) == section]


# -- sections --------------------------------------------------------------------------------------
class Page:
    def __init__(self, report: Mapping[str, Any], assets: Assets) -> None:
        self.report = report
        self.assets = assets
        self.artifacts = [a for a in _list(report.get("artifacts")) if isinstance(a, Mapping)]

    # helpers
    def artifacts_for(self, section: str) -> list[Mapping[str, Any]]:
        return [a for a in self.artifacts if section_of(a) == section]

    def artifact_figure(self, a: Mapping[str, Any], caption_extra: str = "") -> str:
        meta = _dict(a.get("meta"))
        title = esc(a.get("title") or a.get("kind"))
        if a.get("path") is None:
            why = meta.get("skipped") or meta.get("error") or "no image"
            return f'<div class="artifact-note">{title}: {esc(why)}</div>'
        uri, why = self.assets.data_uri(a.get("path"))
        if uri is None:
            return f'<div class="artifact-note">{title}: {esc(why)}</div>'
        return figure(uri, title + caption_extra, alt=str(a.get("title") or a.get("kind")))

    def baseline_metrics(self) -> Mapping[str, Any]:
        r = self.report
        for cand in (_dict(r.get("baseline")).get("metrics"), r.get("baseline_metrics"),
                     _dict(r.get("metrics")).get("baseline")):  # fmt: skip
            if isinstance(cand, Mapping) and cand:
                return cand
        return {}

    def baseline_name(self) -> str:
        m = _dict(_dict(self.report.get("baseline")).get("model"))
        if m.get("name"):
            return f"{m['name']} {m.get('version', '')}".strip()
        return "baseline"

    # summary
    def summary(self) -> str:
        r = self.report
        model = _dict(r.get("model"))
        checks = checks_of(r)
        counts = {"pass": 0, "fail": 0, "skip": 0}
        for c in checks:
            counts[check_status(c)] += 1
        gates = [g for c in checks for g in _list(c.get("gates")) if isinstance(g, Mapping)]
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

    def section_status(self, section: str) -> str | None:
        """'fail' / 'pass' / None for the nav: checks and gates that belong to the section."""
        statuses = [check_status(c) for c in checks_for(self.report, section)]
        statuses += ["pass" if g.get("passed") else "fail" for g in gates_of(self.report, section)]
        if "fail" in statuses:
            return "fail"
        return "pass" if "pass" in statuses else None

    # checks
    def sec_checks(self) -> str:
        checks = checks_of(self.report)
        if not checks:
            return ""
        rows = []
        for c in checks:
            st = check_status(c)
            if st == "skip":
                what = "skipped: " + esc(c.get("skipped"))
            else:
                fails = [f.get("message") for f in _list(c.get("findings"))
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
        other_gates = gates_of(self.report, "checks")
        if other_gates:
            body += "<h3>Other gates</h3>" + gates_table(other_gates)
        return body

    # provenance
    def sec_provenance(self) -> str:
        r = self.report
        card = _dict(r.get("card"))
        diff = _dict(r.get("diff"))
        checks = checks_for(r, "provenance")
        fmaps = self.artifacts_for("provenance")
        if not (card or diff or checks or fmaps):
            return ""
        out = []
        if card:
            out.append(self._card(card))
        claims = _dict(card.get("claims"))
        if claims:
            out.append(self._claims(claims))
        for c in checks:
            out.append(check_block(c))
        if diff:
            out.append("<h3>Changes against the base model</h3>" + self._diff(diff))
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
                out.append(self.artifact_figure(a) + self._fmap_meta(_dict(a.get("meta"))))
        return "".join(out)

    def _signature_status(self) -> str:
        for c in checks_for(self.report, "provenance"):
            for f in _list(c.get("findings")):
                if isinstance(f, Mapping) and str(f.get("check", "")).startswith(
                    "provenance.signature"
                ):
                    sev = str(f.get("severity", "fail"))
                    return badge(sev, sev) + " " + esc(f.get("message"))
        checked = checks_for(self.report, "provenance")
        if any(check_status(c) == "pass" for c in checked):
            return badge("pass", "no signature finding") + " (kp_provenance passed)"
        return "not checked in this run"

    def _card(self, card: Mapping[str, Any]) -> str:
        m, p = _dict(card.get("model")), _dict(card.get("provenance"))
        lic, dep = _dict(card.get("license")), _dict(card.get("dependencies"))
        actual = _dict(self.report.get("model")).get("sha256")
        pinned = m.get("sha256")
        if pinned and actual:
            digest = f"<code>{esc(pinned)}</code> " + (
                badge("pass", "weights match")
                if pinned == actual
                else badge("fail", "weights differ")
            )
        else:
            digest = f"<code>{esc(pinned)}</code>" if pinned else badge("warn", "no pinned digest")
        mods = _list(p.get("modifications"))
        mods_html = "<ul>" + "".join(f"<li>{esc(x)}</li>" for x in mods) + "</ul>" if mods else ""
        req = ", ".join(str(x) for x in _list(dep.get("requires")))
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
                ("signature status", self._signature_status()),
                ("modifications", mods_html),
                (
                    "license",
                    esc(lic.get("spdx")) if lic.get("spdx") else badge("warn", "none given"),
                ),
                ("dependencies", esc(deps)),
                ("card file", f"<code>{esc(card.get('path'))}</code>" if card.get("path") else ""),
            ]
        )

    def _claims(self, claims: Mapping[str, Any]) -> str:
        metrics = _dict(self.report.get("metrics"))
        from ..gates import ACCURACY

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

    def _diff(self, d: Mapping[str, Any]) -> str:
        out = []
        m, b = _dict(d.get("model")), _dict(d.get("base"))
        params, flops = _dict(d.get("parameters")), _dict(d.get("flops"))
        summary = _dict(d.get("summary"))
        out.append(
            kv_table(
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
                        f"{_giga(flops.get('model'))} vs {_giga(flops.get('base'))} "
                        f"(input {esc('x'.join(str(x) for x in _list(flops.get('input'))))})"
                        if flops.get("model") or flops.get("base")
                        else "",
                    ),  # fmt: skip
                    ("tensors", esc(", ".join(f"{k} {v}" for k, v in summary.items()))),
                ]
            )
        )
        out.append(findings_table(_list(d.get("findings"))))
        comps = [c for c in _list(d.get("components")) if isinstance(c, Mapping)]
        if comps:
            rows = [
                (f"<code>{esc(c.get('name'))}</code>", fmt(c.get("layers")), fmt(c.get("params")),
                 fmt(c.get("base_params")), *(fmt(c.get(k)) for k in
                 ("added", "removed", "reshaped", "changed", "frozen")), fmt(plots.num(c.get("rel_change"))))
                for c in comps
            ]  # fmt: skip
            out.append(
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
        structural = []
        for key, label in (("added", "added"), ("removed", "removed")):
            for t in _list(d.get(key)):
                if isinstance(t, Mapping):
                    structural.append((badge("warn" if key == "added" else "fail", label),
                                       f"<code>{esc(t.get('name'))}</code>",
                                       esc(_shape(t.get("shape"))), ""))  # fmt: skip
        for t in _list(d.get("reshaped")):
            if isinstance(t, Mapping):
                structural.append((badge("warn", "reshaped"), f"<code>{esc(t.get('name'))}</code>",
                                   esc(_shape(t.get("shape"))), esc(_shape(t.get("base_shape")))))  # fmt: skip
        if structural:
            out.append(
                details(
                    f"Structural changes ({len(structural)} tensors)",
                    table(("change", "tensor", "shape", "base shape"), structural),
                    open_=len(structural) <= 20,
                )
            )
        layers = [x for x in _list(d.get("layers")) if isinstance(x, Mapping)]
        if layers:
            rows = [
                (f"<code>{esc(x.get('name'))}</code>", esc(x.get("status")), fmt(x.get("params")),
                 fmt(x.get("base_params")), fmt(plots.num(x.get("rel_change"))))
                for x in layers[:500]
            ]  # fmt: skip
            more = note(f"… and {len(layers) - 500} more layers") if len(layers) > 500 else ""
            out.append(details(f"All layers ({len(layers)})",
                               table(("layer", "status", "params", "base params", "rel. change"), rows, "num") + more))  # fmt: skip
        frozen = _list(d.get("frozen_layers"))
        if frozen:
            out.append(note(f"{len(frozen)} layer(s) identical to the base (frozen)."))
        return "".join(out)

    def _fmap_meta(self, meta: Mapping[str, Any]) -> str:
        levels = _dict(meta.get("levels"))
        if not levels:
            return ""
        base = _dict(meta.get("base_levels"))
        cos = _dict(meta.get("cosine_to_base"))
        rows = []
        for name, st in levels.items():
            st = _dict(st)
            bst = _dict(base.get(name))
            rows.append(
                (esc(name), esc(_shape(st.get("shape"))), fmt(plots.num(st.get("mean"))),
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

    # license & dependencies
    def sec_license(self) -> str:
        checks = checks_for(self.report, "license")
        extra = []
        for key in ("policy", "sbom", "licenses", "dependencies"):
            val = self.report.get(key)
            if isinstance(val, Mapping) and val:
                extra.append(f"<h3>{esc(key)}</h3>" + generic(val))
        if not checks and not extra:
            return ""
        return "".join(check_block(c) for c in checks) + "".join(extra)

    # security
    def sec_security(self) -> str:
        checks = checks_for(self.report, "security")
        sec = self.report.get("security")
        if not checks and not sec:
            return ""
        out = [check_block(c) for c in checks]
        sec = _dict(sec)
        scans = []
        for key in ("scans", "scan"):
            scans += [s for s in _list(sec.get(key)) if isinstance(s, Mapping)]
        if not scans and "verdict" in sec:
            scans = [sec]
        if scans:
            rows = [
                (f"<code>{esc(s.get('path'))}</code>", esc(s.get("kind")),
                 badge(str(s.get("verdict", "info"))), fmt(s.get("size")), fmt(s.get("tensors")),
                 fmt(len(_list(s.get("globals")))), fmt(len(_list(s.get("findings")))))
                for s in scans
            ]  # fmt: skip
            out.append("<h3>Static scan</h3>"
                       + table(("file", "kind", "verdict", "bytes", "tensors", "globals", "findings"), rows))  # fmt: skip
            for s in scans:
                out.append(findings_table(_list(s.get("findings"))))
                glob = _list(s.get("globals"))
                if glob:
                    out.append(details(f"Globals imported by {esc(s.get('path'))} ({len(glob)})",
                                       "<ul class=\"cols\">" + "".join(f"<li><code>{esc(g)}</code></li>" for g in glob) + "</ul>"))  # fmt: skip
        events = [
            e
            for key in ("events", "guard", "runtime")
            for e in _list(sec.get(key))
            if isinstance(e, Mapping)
        ]
        if events:
            rows = [
                (badge("fail" if e.get("blocked") else "warn", "blocked" if e.get("blocked") else "recorded"),
                 esc(e.get("category")), f"<code>{esc(e.get('event'))}</code>",
                 esc(", ".join(str(a) for a in _list(e.get("args")))[:200]), esc(e.get("reason")),
                 esc((_list(e.get("stack")) or [""])[-1]))
                for e in events
            ]  # fmt: skip
            out.append("<h3>Runtime guard</h3>" + table(("action", "category", "event", "arguments", "reason", "where"), rows))  # fmt: skip
        known = ("scans", "scan", "events", "guard", "runtime")
        rest = {} if "verdict" in sec else {k: v for k, v in sec.items() if k not in known}
        if rest:
            out.append(details("Other security data", generic(rest)))
        return "".join(out)

    # accuracy
    def sec_accuracy(self) -> str:
        m = _dict(self.report.get("metrics"))
        gates = gates_of(self.report, "accuracy")
        arts = self.artifacts_for("accuracy")
        has = any(
            isinstance(m.get(k), Mapping) and m.get(k)
            for k in ("bbox", "keypoints", "per_keypoint", "pr_curves")
        )
        if not (has or gates or arts):
            return ""
        base = self.baseline_metrics()
        out = []
        ds, eng = _dict(m.get("dataset")), _dict(m.get("engine"))
        if ds or eng:
            bits = []
            if ds.get("images") is not None:
                bits.append(f"{fmt(ds.get('images'))} images, {fmt(ds.get('annotations'))} annotations, "
                            f"{fmt(ds.get('results'))} detections evaluated")  # fmt: skip
            if eng.get("name"):
                bits.append(f"engine {esc(eng.get('name'))} {esc(eng.get('version', ''))}")
            if base:
                bits.append(f"baseline: {esc(self.baseline_name())}")
            out.append(note("; ".join(bits)))
        if gates:
            out.append("<h3>Accuracy gates</h3>" + gates_table(gates))
        boot = _dict(m.get("bootstrap"))
        stat_tables = []
        for t, title in (("bbox", "Boxes"), ("keypoints", "Keypoints")):
            stats = _dict(m.get(t))
            if not stats:
                continue
            bstats = _dict(base.get(t))
            ci = _dict(boot.get(t))
            rows = []
            for name, v in stats.items():
                val = plots.num(v)
                iv = _dict(ci.get(name))
                ci_s = (f"[{fmt(plots.num(iv.get('low')))}, {fmt(plots.num(iv.get('high')))}]"
                        if iv.get("low") is not None else "")  # fmt: skip
                bv = plots.num(bstats.get(name))
                delta = (
                    val - bv
                    if val is not None and bv is not None and val >= 0 and bv >= 0
                    else None
                )
                row = [esc(name), fmt(val) if val is None or val >= 0 else "n/a", ci_s]
                if base:
                    row += [fmt(bv) if bv is None or bv >= 0 else "n/a", _delta(delta)]
                rows.append(row)
            heads = ["stat", "model", f"{pct(boot.get('confidence'))} CI" if boot else "CI"]
            if base:
                heads += ["baseline", "Δ"]
            stat_tables.append(f"<div><h3>{title}</h3>{table(heads, rows, 'num')}</div>")
        if stat_tables:
            out.append('<div class="cols2">' + "".join(stat_tables) + "</div>")
        out.append(
            figure(
                plots.ap_intervals(boot, _dict(base.get("bootstrap")), base),
                "AP with bootstrap confidence intervals",
            )
        )
        out.append(figure(plots.pr_curves(m.get("pr_curves"), base.get("pr_curves")),
                          "Precision-recall curves (area all); dashed: baseline"))  # fmt: skip
        pk = _dict(m.get("per_keypoint"))
        if pk:
            out.append("<h3>Per keypoint</h3>")
            out.append(figure(plots.per_keypoint(pk, base.get("per_keypoint")),
                              "Per-keypoint AP (only that keypoint in the OKS) and mean OKS"))  # fmt: skip
            out.append(
                details(
                    "Per-keypoint table",
                    self._per_keypoint_table(pk, _dict(base.get("per_keypoint"))),
                )
            )
        ke = _dict(m.get("keypoint_errors"))
        if ke:
            out.append("<h3>Error analysis</h3>")
            out.append(figure(plots.keypoint_errors(ke),
                              "Shares of matched keypoints: good, jitter, inversion (left/right), "
                              "swap (another person's), miss"))  # fmt: skip
            overall = _dict(ke.get("overall"))
            dets = _dict(ke.get("detections"))
            if overall:
                rows = [(esc(k), pct(v) if k != "n" else fmt(v)) for k, v in overall.items()]
                rows += [(esc(k.replace("_", " ") + " (detections)"), pct(v) if k != "analysed" else fmt(v))
                         for k, v in dets.items()]  # fmt: skip
                out.append(details("Error shares overall", table(("error", "share"), rows, "num")))
        pck = _dict(m.get("pck"))
        if pck:
            rows = [(esc(k), fmt(v) if isinstance(v, int) else fmt(plots.num(v)))
                    for k, v in pck.items()]  # fmt: skip
            out.append("<h3>PCK</h3>" + table(("alpha / stat", "value"), rows, "num"))
        flip = _dict(m.get("flip_consistency"))
        if flip:
            out.append("<h3>Flip consistency</h3>" + kv_table([(k, fmt(plots.num(v)) if not isinstance(v, Mapping) else "")
                                                              for k, v in flip.items() if not isinstance(v, Mapping)]))  # fmt: skip
        for a in arts:
            out.append(self.artifact_figure(a))
        notes = _list(ds.get("notes"))
        if notes:
            out.append(note("Dataset notes: " + "; ".join(esc(n) for n in notes)))
        return "".join(out)

    def _per_keypoint_table(self, pk: Mapping[str, Any], base: Mapping[str, Any]) -> str:
        first = next((r for r in pk.values() if isinstance(r, Mapping)), {})
        cols = [k for k in first if k not in ("sigma",)]
        rows = []
        for name, row in pk.items():
            if not isinstance(row, Mapping):
                continue
            cells = [esc(name), fmt(plots.num(row.get("sigma")))]
            cells += [fmt(row.get(k)) if k == "n" else fmt(plots.num(row.get(k))) for k in cols]
            if base:
                bap = plots.num(_dict(base.get(name)).get("ap"))
                ap = plots.num(row.get("ap"))
                cells += [
                    fmt(bap),
                    _delta(ap - bap if ap is not None and bap is not None else None),
                ]
            rows.append(cells)
        heads = ["keypoint", "sigma", *cols] + (["base ap", "Δ ap"] if base else [])
        return table(heads, rows, "num")

    # speed
    def sec_speed(self) -> str:
        bench = [e for e in _list(self.report.get("bench")) if isinstance(e, Mapping)]
        parity = _dict(self.report.get("parity"))
        gates = gates_of(self.report, "speed")
        arts = self.artifacts_for("speed")
        if not (bench or parity or gates or arts):
            return ""
        out = []
        if gates:
            out.append("<h3>Speed gates</h3>" + gates_table(gates))
        base_bench = [
            e
            for e in _list(_dict(self.report.get("baseline")).get("bench"))
            if isinstance(e, Mapping)
        ]
        if bench:
            rows = []
            who = ["model"] * len(bench) + [self.baseline_name()] * len(base_bench)
            for n, e in enumerate(bench + base_bench):
                lat = _dict(e.get("latency_ms"))
                mem = _dict(e.get("memory"))
                dets = _dict(e.get("detections_per_image"))
                size = _shape(e.get("image_size")) or "own sizes"
                setting = ((f"<b>{esc(who[n])}</b>: " if base_bench else "")
                           + f"batch {fmt(e.get('batch_size'))}, {esc(e.get('precision'))}, {esc(size)}"
                           f'<br><span class="small">{esc(e.get("device_name") or e.get("device"))}</span>')  # fmt: skip
                rows.append(
                    (setting, fmt_value(e.get("fps")), fmt_value(e.get("fps_latency")),
                     fmt_value(lat.get("p50")), fmt_value(lat.get("p90")),
                     f"{fmt_value(lat.get('mean'))} ± {fmt_value(lat.get('stdev'))}",
                     fmt_value(e.get("peak_vram_mib")), fmt_value(mem.get("rss_peak_increase_mib")),
                     fmt_value(dets.get("mean")), fmt(e.get("iters")))
                )  # fmt: skip
            out.append(
                "<h3>Measurements</h3>"
                + table(
                    (
                        "setting",
                        "FPS",
                        "FPS at p50",
                        "p50 ms",
                        "p90 ms",
                        "mean ± sd ms",
                        "peak VRAM MiB",
                        "RSS +MiB",
                        "dets/img",
                        "iters",
                    ),
                    rows,
                    "num",
                )  # fmt: skip
                + note(
                    "FPS: images per second of wall time over the timed loop (throughput); "
                    "FPS at p50: batch size / median latency of one call."
                )  # fmt: skip
            )
            out.append(figure(plots.latency(bench), "Latency per call; the red tick marks p90"))
            out.append(figure(plots.stages(bench), "Median milliseconds per model stage"))
        if parity:
            out.append("<h3>Deployment variants</h3>" + self._parity(parity))
        for a in arts:
            out.append(self.artifact_figure(a))
        return "".join(out)

    def _parity(self, p: Mapping[str, Any]) -> str:
        rows = []
        for r in _list(p.get("rows")):
            if not isinstance(r, Mapping):
                continue
            status = str(r.get("status", "info"))
            why = r.get("reason") if status != "ok" else r.get("notes")
            rows.append(
                (f"<code>{esc(r.get('variant'))}</code>", badge(status), esc(r.get("device")),
                 esc(r.get("precision")), fmt(plots.num(r.get("latency_ms_p50")), 2),
                 fmt(plots.num(r.get("latency_ms_p90")), 2), fmt(plots.num(r.get("fps")), 2),
                 fmt(plots.num(r.get("box_ap"))), fmt(plots.num(r.get("kp_ap"))),
                 fmt(plots.num(r.get("mean_oks"))), pct(r.get("oks50_fraction")),
                 f'<span class="small">{esc(why)}</span>')
            )  # fmt: skip
        head = note(f"Reference {esc(p.get('reference', 'fp32'))} on {esc(p.get('device', ''))}, "
                    f"{fmt(p.get('images'))} images; agreement = OKS of each variant's detections "
                    "with the reference's.")  # fmt: skip
        return head + table(("variant", "status", "device", "precision", "p50 ms", "p90 ms", "FPS",
                             "box AP", "kp AP", "OKS vs ref", "OKS≥0.5", "note"), rows, "num")  # fmt: skip

    # robustness
    def sec_robustness(self) -> str:
        rob = _dict(self.report.get("robustness"))
        corr: Mapping[str, Any] = {}
        if isinstance(rob.get("results"), Mapping):
            corr = rob
        else:
            for key in ("corruption", "corruption_eval", "corruptions"):
                if isinstance(rob.get(key), Mapping):
                    corr = rob[key]
                    break
        stab = [s for s in _list(rob.get("stability")) if isinstance(s, Mapping)]
        trig = [t for t in _list(rob.get("trigger")) if isinstance(t, Mapping)]
        gates = gates_of(self.report, "robustness")
        arts = self.artifacts_for("robustness")
        if not (corr or stab or trig or gates or arts):
            return ""
        out = []
        if gates:
            out.append("<h3>Robustness gates</h3>" + gates_table(gates))
        if corr:
            out.append("<h3>Corruption suite</h3>" + self._corruption(corr))
        if stab:
            rows = []
            for s in stab:
                worst = sorted(
                    (x for x in _list(s.get("per_image")) if isinstance(x, Mapping) and plots.num(x.get("mean_oks")) is not None),
                    key=lambda x: x["mean_oks"],
                )[:3]  # fmt: skip
                rows.append(
                    (f"<code>{esc(s.get('perturbation') or s.get('kind'))}</code>",
                     fmt(plots.num(s.get("mean_oks"))), fmt(plots.num(s.get("recall"))),
                     fmt(s.get("num_clean")), fmt(s.get("spurious")), fmt(s.get("num_images")),
                     esc(", ".join(f"#{x.get('index')}: {x['mean_oks']:.2f}" for x in worst)))
                )  # fmt: skip
            out.append("<h3>Stability under perturbations</h3>"
                       + table(("perturbation", "mean OKS", "recall", "clean detections", "spurious",
                                "images", "worst images"), rows, "num"))  # fmt: skip
        if trig:
            rows = []
            for t in trig:
                e = _dict(t.get("effect"))
                rows.append(
                    (badge("fail" if t.get("found") else "pass", "TRIGGER FOUND" if t.get("found") else "none found"),
                     f"<code>{esc(t.get('trigger'))}</code>", fmt(plots.num(e.get("strength"))),
                     f"{fmt(e.get('num_vanished'))}/{fmt(e.get('num_away'))}", fmt(e.get("num_appeared")),
                     fmt(plots.num(t.get("threshold"))), fmt(t.get("evaluations")))
                )  # fmt: skip
            out.append("<h3>Trigger scan (data-poisoning probe)</h3>"
                       + table(("verdict", "trigger (shrunk / strongest)", "strength", "vanished",
                                "appeared", "threshold", "evaluations"), rows))  # fmt: skip
        if arts:
            out.append("<h3>Failing examples</h3>"
                       + note("Left: clean image with clean (green) and mapped-back perturbed (red) "
                              "predictions; right: the perturbed image.")  # fmt: skip
                       + '<div class="grid">' + "".join(self.artifact_figure(a, _meta_caption(a)) for a in arts) + "</div>")  # fmt: skip
        return "".join(out)

    def _corruption(self, c: Mapping[str, Any]) -> str:
        primary = c.get("primary")
        out = []
        out.append(
            kv_table(
                [
                    ("metric", f"<code>{esc(primary)}</code>" if primary else "–"),
                    ("clean", fmt(plots.leaf(c.get("clean"), primary))),
                    ("mPC (mean over corruptions and severities)", fmt(plots.num(c.get("mpc")))),
                    ("rPC (mPC / clean)", pct(c.get("rpc"))),
                    ("images, seed", f"{fmt(c.get('num_images'))}, {fmt(c.get('seed'))}"),
                ]
            )
        )
        out.append(figure(plots.robustness_curves(c), "AP against corruption severity"))
        results = _dict(c.get("results"))
        sevs = [str(s) for s in _list(c.get("severities"))] or sorted(
            {str(s) for r in results.values() if isinstance(r, Mapping) for s in r}
        )
        clean = plots.leaf(c.get("clean"), primary)
        per_c = _dict(c.get("per_corruption"))
        rows = []
        for name, by_sev in results.items():
            by_sev = _dict(by_sev)
            mean = plots.leaf(per_c.get(name), primary)
            rel = mean / clean if mean is not None and clean else None
            rows.append(
                [esc(name)]
                + [fmt(plots.leaf(by_sev.get(s), primary)) for s in sevs]
                + [fmt(mean), pct(rel)]
            )
        if rows:
            out.append(details("Per corruption and severity",
                               table(["corruption", *(f"sev {s}" for s in sevs), "mean", "rPC"], rows, "num"),
                               open_=True))  # fmt: skip
        return "".join(out)

    # gallery
    def sec_gallery(self) -> str:
        arts = self.artifacts_for("gallery")
        if not arts:
            return ""
        legend = (
            '<p class="legend"><span class="sw" style="background:#28dc50"></span>ground truth '
            '<span class="sw" style="background:#ff8c00"></span>predicted box (score) '
            '<span class="sw" style="background:#2878ff"></span>left limbs '
            '<span class="sw" style="background:#ff3232"></span>right limbs '
            '<span class="sw" style="background:#ffd200"></span>centre. Worst images first '
            "(lowest share of people found at OKS ≥ 0.5, then lowest mean OKS).</p>"
        )
        cells = "".join(self.artifact_figure(a) for a in arts)
        return legend + f'<div class="grid">{cells}</div>'

    def sec_other(self) -> str:
        arts = self.artifacts_for("other")
        if not arts:
            return ""
        return (
            '<div class="grid">'
            + "".join(self.artifact_figure(a, _meta_caption(a)) for a in arts)
            + "</div>"
        )

    # run
    def sec_run(self) -> str:
        r = self.report
        env, settings = _dict(r.get("environment")), _dict(r.get("settings"))
        warnings = [w for w in _list(r.get("warnings"))]
        if not (env or settings or warnings):
            return ""
        out = []
        if warnings:
            out.append(
                "<h3>Warnings</h3><ul>" + "".join(f"<li>{esc(w)}</li>" for w in warnings) + "</ul>"
            )
        if env:
            gpu = env.get("gpu")
            pairs = [
                (k, esc(v))
                for k, v in env.items()
                if k != "gpu" and not isinstance(v, Mapping | list)
            ]
            if isinstance(gpu, Mapping):
                pairs.append(("gpu", esc(", ".join(f"{k} {v}" for k, v in gpu.items()))))
            out.append("<h3>Environment</h3>" + kv_table(pairs))
        if settings:
            out.append("<h3>Settings</h3>" + kv_table([(k, esc(v)) for k, v in settings.items()]))
        return "".join(out)


def _meta_caption(a: Mapping[str, Any]) -> str:
    meta = _dict(a.get("meta"))
    bits = []
    for k in ("recall", "mean_oks", "missed", "false_positives", "severity", "oks", "score"):
        v = meta.get(k)
        if isinstance(v, int | float) and not isinstance(v, bool):
            bits.append(f"{k.replace('_', ' ')} {fmt(v, 2)}")
    return f'<br><span class="small">{esc(", ".join(bits))}</span>' if bits else ""


def _signed_value(x: Any) -> str:
    v = plots.num(x)
    if v is None:
        return "–"
    return ("+" if v >= 0 else "−") + fmt_value(abs(v))


def _delta(x: float | None) -> str:
    if x is None:
        return "–"
    cls = "up" if x > 0 else ("down" if x < 0 else "")
    return f'<span class="{cls}">{fmt_signed(x)}</span>'


def _giga(x: Any) -> str:
    v = plots.num(x)
    return "–" if v is None else f"{v / 1e9:.2f} GFLOPs"


def _shape(s: Any) -> str:
    items = _list(s)
    return "×".join(str(x) for x in items) if items else ""


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


# -- the page --------------------------------------------------------------------------------------
def stylesheet() -> str:
    try:
        return resources.files(__package__).joinpath("style.css").read_text(encoding="utf-8")
    except (FileNotFoundError, OSError):
        return ""


def _safe(fn: Callable[[], str], name: str) -> str:
    try:
        return fn()
    except Exception as exc:  # noqa: BLE001 - one malformed section must not lose the page
        return note(f"This section could not be rendered from the report data "
                    f"({esc(type(exc).__name__)}: {esc(exc)}).", "render-error")  # fmt: skip


def render(report: Mapping[str, Any], assets: Assets | str | Path | None = None) -> str:
    """The page for ``report`` (a ``kp-report.json`` dict); ``assets`` resolves artifact paths
    (an :class:`Assets` or the report folder; None: artifacts show as notes)."""
    if not isinstance(report, Mapping):
        raise TypeError(f"a report must be a JSON object, got {type(report).__name__}")
    if not isinstance(assets, Assets):
        assets = Assets(assets)
    page = Page(report, assets)
    sections = []
    for key in ("checks", "provenance", "license", "security", "accuracy", "speed",
                "robustness", "gallery", "other", "run"):  # fmt: skip
        body = _safe(getattr(page, f"sec_{key}"), key)
        if body:
            sections.append((key, body))
    nav = []
    for key, _ in sections:
        st = page.section_status(key) if key != "checks" else None
        dot = f' <span class="dot {st}"></span>' if st else ""
        nav.append(f'<a href="#{key}">{esc(SECTION_TITLES[key])}{dot}</a>')
    model = _dict(report.get("model"))
    title = f"kpmodel report: {model.get('name') or 'model'} {model.get('version') or ''}".strip()
    schema = report.get("schema")
    schema_note = ""
    if schema is None:
        schema_note = note("This report has no <code>schema</code> field; rendered as schema "
                           f"{REPORT_SCHEMA}.", "warn-note")  # fmt: skip
    elif schema != REPORT_SCHEMA:
        schema_note = note(f"Report schema {esc(schema)}; this renderer knows schema "
                           f"{REPORT_SCHEMA}: sections it does not know are not shown.", "warn-note")  # fmt: skip
    body = "".join(
        f'<section id="{key}"><h2>{esc(SECTION_TITLES[key])}</h2>{inner}</section>'
        for key, inner in sections
    )
    generated = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{stylesheet()}</style></head><body>"
        f'<nav class="top"><span class="brand">kpmodel</span>{"".join(nav)}</nav>'
        f"<main>{_safe(page.summary, 'summary')}{schema_note}{body}</main>"
        f"<footer>pytest-kpmodel report, schema {esc(schema)}, rendered {generated} from "
        "kp-report.json (re-render with <code>kpmodel report DIR</code>).</footer>"
        "</body></html>\n"
    )


def write_report(
    session: Any, folder: str | Path | None = None, *, gallery: int = 8, feature_maps: int = 2
) -> tuple[Path, Path]:
    """Everything ``--kp-report=DIR`` writes, for the plugin's session end: the artifacts
    (:func:`.assets.collect_artifacts`: gallery, feature maps, stability renderings) added to
    ``session.sections["artifacts"]``, the card as ``session.sections["card"]``, then
    ``kp-report.json`` and ``index.html`` rendered from that JSON as written (what
    ``kpmodel report DIR`` renders too). Returns both paths. Drawing never breaks the report:
    a part that fails is a note in the page."""
    from . import json_report
    from .assets import artifact, card_section, collect_artifacts

    folder = Path(folder if folder is not None else session.settings.report)
    folder.mkdir(parents=True, exist_ok=True)
    try:
        found = collect_artifacts(session, folder, gallery=gallery, feature_maps=feature_maps)
    except Exception as exc:  # noqa: BLE001
        found = [artifact("other", "figures", None, {"error": f"{type(exc).__name__}: {exc}"})]
    previous = session.sections.get("artifacts")
    session.sections["artifacts"] = [*(previous if isinstance(previous, list) else []), *found]
    if "card" not in session.sections:
        with contextlib.suppress(Exception):  # a broken card is reported under "model"
            session.sections["card"] = card_section(session.card)
    json_path = json_report.write(json_report.build(session), folder)
    report = json.loads(json_path.read_text(encoding="utf-8"))
    return json_path, write_html(report, folder)


def write_html(report: Mapping[str, Any], folder: str | Path) -> Path:
    """Render ``report`` with the artifacts under ``folder``; write ``folder/index.html``."""
    folder = Path(folder)
    return write_text_atomic(folder / HTML_NAME, render(report, Assets(folder)))
