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
the summary, the checks, "License & dependencies" and the run environment); each is a module
of :mod:`.sections`:

* summary: model, digest, verdict counts (checks pass/fail/skip, gates), per-section status;
* checks: one row per marker evaluation, with a pass/FAIL/skip badge;
* model card & provenance: ``card`` (see ``write.card_section``), digest and signature status
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

import datetime
from collections.abc import Callable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from .assets import Assets, write_text_atomic
from .json_report import REPORT_SCHEMA
from .markup import as_dict, esc, note
from .page import Page
from .sections import (
    accuracy,
    checks,
    figures,
    license,
    provenance,
    robustness,
    run,
    security,
    speed,
    summary,
)

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
# The sections in page order (the summary heads the page, outside them).
SECTIONS: dict[str, Callable[[Page], str]] = {
    "checks": checks.render,
    "provenance": provenance.render,
    "license": license.render,
    "security": security.render,
    "accuracy": accuracy.render,
    "speed": speed.render,
    "robustness": robustness.render,
    "gallery": figures.gallery,
    "other": figures.other,
    "run": run.render,
}


def stylesheet() -> str:
    try:
        return resources.files(__package__).joinpath("style.css").read_text(encoding="utf-8")
    except (FileNotFoundError, OSError):
        return ""


def _safe(render_section: Callable[[Page], str], page: Page) -> str:
    try:
        return render_section(page)
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
    for key, render_section in SECTIONS.items():
        body = _safe(render_section, page)
        if body:
            sections.append((key, body))
    nav = []
    for key, _ in sections:
        st = page.section_status(key) if key != "checks" else None
        dot = f' <span class="dot {st}"></span>' if st else ""
        nav.append(f'<a href="#{key}">{esc(SECTION_TITLES[key])}{dot}</a>')
    model = as_dict(report.get("model"))
    title = f"kpmodel report: {model.get('name') or 'model'} {model.get('version') or ''}".strip()
    body = "".join(
        f'<section id="{key}"><h2>{esc(SECTION_TITLES[key])}</h2>{inner}</section>'
        for key, inner in sections
    )
    generated = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{stylesheet()}</style></head><body>"
        f'<nav class="top"><span class="brand">kpmodel</span>{"".join(nav)}</nav>'
        f"<main>{_safe(summary.render, page)}{_schema_note(report.get('schema'))}{body}</main>"
        f"<footer>pytest-kpmodel report, schema {esc(report.get('schema'))}, rendered "
        f"{generated} from kp-report.json (re-render with <code>kpmodel report DIR</code>)."
        "</footer></body></html>\n"
    )


def _schema_note(schema: Any) -> str:
    if schema is None:
        return note("This report has no <code>schema</code> field; rendered as schema "
                    f"{REPORT_SCHEMA}.", "warn-note")  # fmt: skip
    if schema != REPORT_SCHEMA:
        return note(f"Report schema {esc(schema)}; this renderer knows schema "
                    f"{REPORT_SCHEMA}: sections it does not know are not shown.", "warn-note")  # fmt: skip
    return ""


def write_html(report: Mapping[str, Any], folder: str | Path) -> Path:
    """Render ``report`` with the artifacts under ``folder``; write ``folder/index.html``."""
    folder = Path(folder)
    return write_text_atomic(folder / HTML_NAME, render(report, Assets(folder)))
