"""Speed: the measurements (latency, FPS, memory), latency and stage charts, the deployment
variants table and the speed gates."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .. import plots
from ..markup import (
    as_dict,
    as_list,
    badge,
    esc,
    figure,
    fmt,
    fmt_value,
    note,
    pct,
    shape_text,
    table,
)
from ..page import Page
from ..verdicts import gates_of, gates_table


def render(page: Page) -> str:
    bench = [e for e in as_list(page.report.get("bench")) if isinstance(e, Mapping)]
    parity = as_dict(page.report.get("parity"))
    gates = gates_of(page.report, "speed")
    arts = page.artifacts_for("speed")
    if not (bench or parity or gates or arts):
        return ""
    out = []
    if gates:
        out.append("<h3>Speed gates</h3>" + gates_table(gates))
    base_bench = [
        e
        for e in as_list(as_dict(page.report.get("baseline")).get("bench"))
        if isinstance(e, Mapping)
    ]
    if bench:
        out.append(_measurements(bench, base_bench, page.baseline_name()))
        out.append(figure(plots.latency(bench), "Latency per call; the red tick marks p90"))
        out.append(figure(plots.stages(bench), "Median milliseconds per model stage"))
    if parity:
        out.append("<h3>Deployment variants</h3>" + _parity(parity))
    for a in arts:
        out.append(page.artifact_figure(a))
    return "".join(out)


def _measurements(bench: list[Mapping[str, Any]], base_bench: list[Mapping[str, Any]],
                  baseline_name: str) -> str:  # fmt: skip
    """One row per setting measured, the model's then the baseline's."""
    rows = []
    who = ["model"] * len(bench) + [baseline_name] * len(base_bench)
    for n, e in enumerate(bench + base_bench):
        lat = as_dict(e.get("latency_ms"))
        mem = as_dict(e.get("memory"))
        dets = as_dict(e.get("detections_per_image"))
        size = shape_text(e.get("image_size")) or "own sizes"
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
    return (
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


def _parity(p: Mapping[str, Any]) -> str:
    rows = []
    for r in as_list(p.get("rows")):
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
