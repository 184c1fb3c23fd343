"""Run: warnings, the environment and the settings."""

from __future__ import annotations

from collections.abc import Mapping

from ..markup import as_dict, as_list, esc, kv_table
from ..page import Page


def render(page: Page) -> str:
    r = page.report
    env, settings = as_dict(r.get("environment")), as_dict(r.get("settings"))
    warnings = [w for w in as_list(r.get("warnings"))]
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
            (k, esc(v)) for k, v in env.items() if k != "gpu" and not isinstance(v, Mapping | list)
        ]
        if isinstance(gpu, Mapping):
            pairs.append(("gpu", esc(", ".join(f"{k} {v}" for k, v in gpu.items()))))
        out.append("<h3>Environment</h3>" + kv_table(pairs))
    if settings:
        out.append("<h3>Settings</h3>" + kv_table([(k, esc(v)) for k, v in settings.items()]))
    return "".join(out)
