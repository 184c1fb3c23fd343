"""Robustness: the corruption suite (AP against severity, mPC, rPC), stability under
perturbations, the trigger scan, failing examples and the robustness gates."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .. import plots
from ..markup import (
    as_dict,
    as_list,
    badge,
    details,
    esc,
    figure,
    fmt,
    kv_table,
    meta_caption,
    note,
    pct,
    table,
)
from ..page import Page
from ..verdicts import gates_of, gates_table


def render(page: Page) -> str:
    rob = as_dict(page.report.get("robustness"))
    corr: Mapping[str, Any] = {}
    if isinstance(rob.get("results"), Mapping):
        corr = rob
    else:
        for key in ("corruption", "corruption_eval", "corruptions"):
            if isinstance(rob.get(key), Mapping):
                corr = rob[key]
                break
    stab = [s for s in as_list(rob.get("stability")) if isinstance(s, Mapping)]
    trig = [t for t in as_list(rob.get("trigger")) if isinstance(t, Mapping)]
    gates = gates_of(page.report, "robustness")
    arts = page.artifacts_for("robustness")
    if not (corr or stab or trig or gates or arts):
        return ""
    out = []
    if gates:
        out.append("<h3>Robustness gates</h3>" + gates_table(gates))
    if corr:
        out.append("<h3>Corruption suite</h3>" + _corruption(corr))
    if stab:
        rows = []
        for s in stab:
            worst = sorted(
                (x for x in as_list(s.get("per_image")) if isinstance(x, Mapping) and plots.num(x.get("mean_oks")) is not None),
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
            e = as_dict(t.get("effect"))
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
                   + '<div class="grid">' + "".join(page.artifact_figure(a, meta_caption(a)) for a in arts) + "</div>")  # fmt: skip
    return "".join(out)


def _corruption(c: Mapping[str, Any]) -> str:
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
    results = as_dict(c.get("results"))
    sevs = [str(s) for s in as_list(c.get("severities"))] or sorted(
        {str(s) for r in results.values() if isinstance(r, Mapping) for s in r}
    )
    clean = plots.leaf(c.get("clean"), primary)
    per_c = as_dict(c.get("per_corruption"))
    rows = []
    for name, by_sev in results.items():
        by_sev = as_dict(by_sev)
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
