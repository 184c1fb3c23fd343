"""The report's charts: matplotlib figures rendered to inline ``data:image/png`` URIs.

Each function takes a piece of ``kp-report.json`` (the layouts of ``metrics.KeypointMetrics
.to_json()``, ``bench.BenchResult.to_json()``, ``corruption_eval.CorruptionEvalResult.to_dict()``)
and returns a data URI, or None when the piece holds nothing to plot. Figures use the Agg canvas
directly (``matplotlib.figure.Figure``): no pyplot, no global backend switch, nothing shown.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Mapping, Sequence
from typing import Any

DPI = 90
COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")
MODEL_COLOUR = "#1f6fb4"
BASE_COLOUR = "#9a9a9a"
ERROR_COLOURS = {
    "good": "#2ca02c",
    "jitter": "#bcbd22",
    "inversion": "#ff7f0e",
    "swap": "#9467bd",
    "miss": "#d62728",
}


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def png_uri(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def num(x: Any) -> float | None:
    """A finite float, or None (for None, strings, NaN, booleans)."""
    if isinstance(x, bool) or not isinstance(x, int | float):
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def leaf(d: Any, path: str | None) -> float | None:
    """``d["a"]["b"]`` for ``path="a.b"`` (also a flat ``d["a.b"]``), as a number or None."""
    if not isinstance(d, Mapping) or not path:
        return None
    if path in d:
        return num(d[path])
    cur: Any = d
    for part in path.split("."):
        if not isinstance(cur, Mapping) or part not in cur:
            return None
        cur = cur[part]
    return num(cur)


# -- accuracy ----------------------------------------------------------------------------------------
def _curve(values: Any) -> list[float] | None:
    if not isinstance(values, Sequence) or not values:
        return None
    out = [num(v) for v in values]
    if any(v is None for v in out) or all(v < 0 for v in out):  # type: ignore[operator]
        return None
    return [max(0.0, v) for v in out]  # type: ignore[type-var]


def _trim(recall: list[float], y: list[float]) -> tuple[list[float], list[float]]:
    """Drop the zeros after the last recall reached (COCO pads precision with 0 there)."""
    last = max((i for i, v in enumerate(y) if v > 0), default=-1)
    return recall[: last + 1], y[: last + 1]


def pr_curves(pr: Any, baseline: Any = None) -> str | None:
    """Precision-recall curves for boxes and keypoints (OKS/IoU 0.5, 0.75, mean 0.50:0.95)."""
    if not isinstance(pr, Mapping):
        return None
    recall = _curve(pr.get("recall"))
    types = [t for t in ("bbox", "keypoints") if isinstance(pr.get(t), Mapping)]
    if recall is None or not types:
        return None
    fig = _figure(4.6 * len(types), 3.4)
    axes = fig.subplots(1, len(types), squeeze=False)[0]
    drawn = False
    for ax, t in zip(axes, types, strict=True):
        for (key, label), colour in zip(
            (("mean", "mean .50:.95"), ("iou50", "@.50"), ("iou75", "@.75")), COLOURS, strict=False
        ):
            y = _curve(pr[t].get(key))
            if y is not None and len(y) == len(recall):
                ax.plot(*_trim(recall, y), color=colour, label=label, lw=1.6)
                drawn = True
            bt = baseline.get(t) if isinstance(baseline, Mapping) else None
            yb = _curve(bt.get(key)) if isinstance(bt, Mapping) else None
            if yb is not None and len(yb) == len(recall):
                ax.plot(*_trim(recall, yb), color=colour, ls="--", lw=1.0, alpha=0.8,
                        label=f"{label} base")  # fmt: skip
        name = "IoU" if t == "bbox" else "OKS"
        ax.set_title(f"{'boxes' if t == 'bbox' else 'keypoints'} ({name} thresholds)", fontsize=10)
        ax.set_xlabel("recall")
        ax.set_ylabel("precision")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower left", framealpha=0.85)
    fig.tight_layout()
    return png_uri(fig) if drawn else None


def per_keypoint(pk: Any, baseline: Any = None) -> str | None:
    """Per-keypoint AP and mean OKS bars (model, and the baseline beside it)."""
    if not isinstance(pk, Mapping) or not pk:
        return None
    names = [n for n, row in pk.items() if isinstance(row, Mapping)]
    if not names:
        return None
    base = baseline if isinstance(baseline, Mapping) else {}
    metrics = [("ap", "keypoint AP (OKS .50:.95)"), ("oks", "mean OKS of matched detections")]
    fig = _figure(9.5, 0.26 * len(names) + 1.3)
    axes = fig.subplots(1, 2, sharey=True)
    import numpy as np

    y = np.arange(len(names))
    has_base = any(isinstance(base.get(n), Mapping) for n in names)
    h = 0.4 if has_base else 0.7
    for ax, (key, title) in zip(axes, metrics, strict=True):
        vals = [num(pk[n].get(key)) for n in names]
        ax.barh(y - (h / 2 if has_base else 0), [v or 0 for v in vals], height=h,
                color=MODEL_COLOUR, label="model")  # fmt: skip
        if has_base:
            bvals = [num(base.get(n, {}).get(key)) if isinstance(base.get(n), Mapping) else None
                     for n in names]  # fmt: skip
            ax.barh(y + h / 2, [v or 0 for v in bvals], height=h, color=BASE_COLOUR, label="base")
        for yi, v in zip(y, vals, strict=True):
            ax.text((v or 0) + 0.01, yi - (h / 2 if has_base else 0), "–" if v is None else f"{v:.2f}",
                    va="center", fontsize=7)  # fmt: skip
        ax.set_title(title, fontsize=10)
        ax.set_xlim(0, 1.12)
        ax.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(y, names, fontsize=8)
    axes[0].invert_yaxis()
    fig.tight_layout()
    if has_base:
        axes[1].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return png_uri(fig)


def keypoint_errors(errors: Any) -> str | None:
    """coco-analyze error shares per keypoint (and overall), stacked bars."""
    if not isinstance(errors, Mapping) or not isinstance(errors.get("per_keypoint"), Mapping):
        return None
    rows = {n: r for n, r in errors["per_keypoint"].items() if isinstance(r, Mapping)}
    if isinstance(errors.get("overall"), Mapping):
        rows = {"ALL": errors["overall"], **rows}
    types = [t for t in ERROR_COLOURS if any(num(r.get(t)) is not None for r in rows.values())]
    if not rows or not types:
        return None
    names = list(rows)
    fig = _figure(8.5, 0.26 * len(names) + 1.4)
    ax = fig.subplots()
    left = [0.0] * len(names)
    for t in types:
        vals = [num(rows[n].get(t)) or 0.0 for n in names]
        ax.barh(range(len(names)), vals, left=left, color=ERROR_COLOURS[t], label=t, height=0.75)
        left = [a + b for a, b in zip(left, vals, strict=True)]
    ax.set_yticks(
        range(len(names)), [f"{n} (n={rows[n].get('n', '?')})" for n in names], fontsize=8
    )
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("share of matched keypoints")
    ax.set_title("keypoint error analysis (coco-analyze types)", fontsize=10)
    fig.tight_layout()
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return png_uri(fig)


def ap_intervals(bootstrap: Any, baseline: Any = None, baseline_values: Any = None) -> str | None:
    """AP, AP50, AP75 for boxes and keypoints with their bootstrap intervals (and baseline).

    ``baseline``: the baseline's ``bootstrap`` (intervals); ``baseline_values``: the baseline's
    metrics (``{"bbox": {...}, "keypoints": {...}}``) for points without intervals."""
    if not isinstance(bootstrap, Mapping):
        return None
    labels, model_pts, base_pts = [], [], []
    for t, short in (("bbox", "box"), ("keypoints", "kp")):
        block = bootstrap.get(t)
        if not isinstance(block, Mapping):
            continue
        for stat in ("AP", "AP50", "AP75"):
            iv = block.get(stat)
            if not isinstance(iv, Mapping) or num(iv.get("estimate")) is None:
                continue
            labels.append(f"{short} {stat}")
            model_pts.append(iv)
            b = baseline.get(t, {}).get(stat) if isinstance(baseline, Mapping) and isinstance(
                baseline.get(t), Mapping) else None  # fmt: skip
            if not isinstance(b, Mapping):
                v = leaf(baseline_values, f"{t}.{stat}")
                b = {"estimate": v} if v is not None else None
            base_pts.append(b)
    if not labels:
        return None
    fig = _figure(max(4.0, 1.0 * len(labels) + 1.5), 3.2)
    ax = fig.subplots()
    has_base = any(b is not None for b in base_pts)
    dx = 0.15 if has_base else 0.0

    def draw(points, offset, colour, label):
        first = True
        for i, iv in enumerate(points):
            if not isinstance(iv, Mapping) or num(iv.get("estimate")) is None:
                continue
            e, lo, hi = num(iv.get("estimate")), num(iv.get("low")), num(iv.get("high"))
            yerr = [[e - lo], [hi - e]] if lo is not None and hi is not None else None
            ax.errorbar([i + offset], [e], yerr=yerr, fmt="o", color=colour, capsize=4, ms=5,
                        label=label if first else None)  # fmt: skip
            first = False

    draw(model_pts, -dx, MODEL_COLOUR, "model")
    if has_base:
        draw(base_pts, dx, BASE_COLOUR, "base")
    conf = num(bootstrap.get("confidence"))
    reps = bootstrap.get("replicates")
    ax.set_xticks(range(len(labels)), labels, fontsize=8)
    ax.set_ylim(0, 1)
    ax.set_ylabel("AP")
    ax.grid(axis="y", alpha=0.3)
    ci = f"{conf:.0%} bootstrap CI" if conf is not None else "bootstrap CI"
    ax.set_title(
        f"AP with {ci}" + (f" ({reps} replicates over images)" if reps else ""), fontsize=10
    )
    ax.legend(fontsize=8)
    fig.tight_layout()
    return png_uri(fig)


# -- speed ---------------------------------------------------------------------------------------
def bench_label(entry: Mapping[str, Any]) -> str:
    size = entry.get("image_size")
    size_s = f" {size[0]}x{size[1]}" if isinstance(size, Sequence) and len(size) == 2 else ""
    dev = entry.get("device") or ""
    return f"bs{entry.get('batch_size', '?')} {entry.get('precision', '?')} {dev}{size_s}".strip()


def latency(entries: Any) -> str | None:
    """Latency distribution per setting: the raw times when present (``times_ms``), else a box
    from the percentiles (p25-p75 box, p50 line, whiskers min-max, p90 marked)."""
    if not isinstance(entries, Sequence):
        return None
    rows = [
        e for e in entries if isinstance(e, Mapping) and isinstance(e.get("latency_ms"), Mapping)
    ]
    stats, raw = [], []
    for e in rows:
        lat = e["latency_ms"]
        p = {k: num(lat.get(k)) for k in ("p25", "p50", "p75", "p90", "min", "max", "mean")}
        if p["p50"] is None:
            continue
        times = e.get("times_ms")
        times = [num(t) for t in times] if isinstance(times, Sequence) else []
        raw.append([t for t in times if t is not None])
        stats.append(
            {
                "label": bench_label(e),
                "med": p["p50"],
                "q1": p["p25"] if p["p25"] is not None else p["p50"],
                "q3": p["p75"] if p["p75"] is not None else p["p50"],
                "whislo": p["min"] if p["min"] is not None else p["p50"],
                "whishi": p["max"] if p["max"] is not None else p["p50"],
                "mean": p["mean"],
                "p90": p["p90"],
                "fliers": [],
            }
        )
    if not stats:
        return None
    fig = _figure(8.5, 0.55 * len(stats) + 1.3)
    ax = fig.subplots()
    ys = list(range(len(stats), 0, -1))  # the first setting on top, as in the tables
    kw = {"positions": ys, "showmeans": all(s["mean"] is not None for s in stats), "widths": 0.5,
          "patch_artist": True, "boxprops": {"facecolor": "#cfe0f3"}}  # fmt: skip
    try:
        ax.bxp(stats, orientation="horizontal", **kw)
    except TypeError:  # matplotlib < 3.10
        ax.bxp(stats, vert=False, **kw)
    for y, s, times in zip(ys, stats, raw, strict=True):
        if times:
            import numpy as np

            jitter = np.random.default_rng(0).uniform(-0.18, 0.18, len(times))
            ax.scatter(times, y + jitter, s=5, alpha=0.35, color=MODEL_COLOUR, zorder=3)
        if s["p90"] is not None:
            ax.plot([s["p90"]], [y], marker="|", ms=16, mew=2, color="#d62728", zorder=4)
    ax.plot([], [], marker="|", ls="", ms=10, mew=2, color="#d62728", label="p90")
    ax.set_yticks(ys, [s["label"] for s in stats], fontsize=8)
    ax.set_xlabel("latency per call (ms)")
    ax.set_title("latency distribution (box p25-p75, line p50, whiskers min-max)", fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return png_uri(fig)


def stages(entries: Any) -> str | None:
    """Median milliseconds per model stage, stacked, one bar per setting."""
    if not isinstance(entries, Sequence):
        return None
    rows = [
        (bench_label(e), {k: num(v) for k, v in e["stages_ms"].items() if num(v) is not None})
        for e in entries
        if isinstance(e, Mapping) and isinstance(e.get("stages_ms"), Mapping) and e["stages_ms"]
    ]
    rows = [(label, st) for label, st in rows if st]
    if not rows:
        return None
    names: list[str] = []
    for _, st in rows:
        names += [n for n in st if n not in names]
    fig = _figure(8.5, 0.5 * len(rows) + 1.5)
    ax = fig.subplots()
    left = [0.0] * len(rows)
    import matplotlib

    cmap = matplotlib.colormaps["tab10"]
    for i, name in enumerate(names):
        vals = [st.get(name, 0.0) for _, st in rows]
        ax.barh(range(len(rows)), vals, left=left, label=name, color=cmap(i % 10), height=0.6)
        left = [a + b for a, b in zip(left, vals, strict=True)]
    for y, total in enumerate(left):
        ax.text(total, y, f" {total:.1f} ms", va="center", fontsize=8)
    ax.set_yticks(range(len(rows)), [label for label, _ in rows], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, max(left) * 1.15 if max(left) > 0 else 1)
    ax.set_xlabel("median ms per call")
    ax.set_title("stage breakdown", fontsize=10)
    fig.tight_layout()
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return png_uri(fig)


# -- robustness ---------------------------------------------------------------------------------------
def robustness_curves(corr: Any, metric: str | None = None) -> str | None:
    """``metric`` (default: the sweep's primary) against severity, one small panel per
    corruption; the clean value as a dashed line."""
    if not isinstance(corr, Mapping) or not isinstance(corr.get("results"), Mapping):
        return None
    metric = metric or corr.get("primary")
    if not metric:
        return None
    clean = leaf(corr.get("clean"), metric)
    panels = []
    for name, by_sev in corr["results"].items():
        if not isinstance(by_sev, Mapping):
            continue
        pts = sorted(
            (int(s), leaf(m, metric)) for s, m in by_sev.items() if str(s).lstrip("-").isdigit()
        )
        pts = [(s, v) for s, v in pts if v is not None]
        if pts:
            panels.append((str(name), pts))
    if not panels:
        return None
    cols = min(5, len(panels))
    rows = math.ceil(len(panels) / cols)
    fig = _figure(2.3 * cols, 1.75 * rows + 0.5)
    axes = fig.subplots(rows, cols, squeeze=False, sharex=True, sharey=True)
    top = max([v for _, pts in panels for _, v in pts] + [clean or 0.0]) or 1.0
    for i, ax in enumerate(axes.flat):
        if i >= len(panels):
            ax.axis("off")
            continue
        name, pts = panels[i]
        xs = [0, *(s for s, _ in pts)] if clean is not None else [s for s, _ in pts]
        ys = [clean, *(v for _, v in pts)] if clean is not None else [v for _, v in pts]
        ax.plot(xs, ys, marker="o", ms=3, color=MODEL_COLOUR, lw=1.4)
        if clean is not None:
            ax.axhline(clean, color=BASE_COLOUR, ls="--", lw=0.9)
        ax.set_title(name.replace("_", " "), fontsize=8)
        ax.set_ylim(0, top * 1.1)
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=7)
    for ax in axes[-1]:
        ax.set_xlabel("severity", fontsize=7)
    fig.suptitle(f"{metric} vs severity (0 = clean, dashed)", fontsize=10)
    fig.tight_layout()
    return png_uri(fig)
