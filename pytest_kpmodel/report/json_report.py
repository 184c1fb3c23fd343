"""``kp-report.json``: stable keys for CI gates, versioned by ``schema``.

Keys (DESIGN.md): model, environment, checks, metrics, bench, robustness, diff. A section whose
data the run did not produce is present and empty, so a gate can tell "not measured" from a key
that moved.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from ..atomic import write_text

REPORT_SCHEMA = 1
REPORT_NAME = "kp-report.json"


def build(session) -> dict[str, Any]:
    from ..environment import describe

    report: dict[str, Any] = {"schema": REPORT_SCHEMA, "model": None, "environment": None}
    report["unpinned"] = None  # true: --kp-model was a bare checkpoint (no card, no pins)
    try:
        card = session.card
        report["unpinned"] = card.unpinned
        report["model"] = {
            "name": card.model.name,
            "version": card.model.version,
            "sha256": session.weights_digest,
            "sha256_pinned": card.model.sha256,
            "format": card.model.format,
            "card": str(card.path),
        }
    except Exception as exc:  # noqa: BLE001 - a broken card still gets a report saying so
        report["model"] = {"error": str(exc)}
    try:
        report["environment"] = describe(session.device)
    except Exception as exc:  # noqa: BLE001
        report["environment"] = {"error": str(exc)}
    report["settings"] = {
        "device": session.settings.device,
        "precision": session.settings.precision,
        "batch_size": session.settings.batch_size,
        "max_images": session.settings.max_images,
        "seed": session.settings.seed,
    }
    report["checks"] = list(session.checks)
    add_security_section(session)
    for key in ("metrics", "bench", "robustness", "diff"):
        report[key] = session.sections.get(key, [] if key == "bench" else {})
    for key, value in session.sections.items():
        report.setdefault(key, value)
    report["warnings"] = list(session.warnings)
    return report


def add_security_section(session) -> None:
    """``session.sections["security"]``: the static scan and what the runtime guard recorded,
    when the run produced them (an xdist worker sends it to the controller too)."""
    scan = session.computed("scan")
    guard = session.computed("guard")
    section: dict[str, Any] = {}
    if scan is not None:
        section["scans"] = [scan.to_json()]
    if guard is not None and guard.events:
        section["events"] = [e.to_json() for e in guard.events]
    if section:
        session.sections["security"] = section


def write(report: dict[str, Any], folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / REPORT_NAME
    text = json.dumps(_finite(report), indent=2, sort_keys=False, default=str)
    return write_text(path, text + "\n")  # never half a report for a CI step reading it


def _finite(x: Any) -> Any:
    """JSON has no NaN/inf: they become null, so strict parsers in CI can read the file."""
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {str(k): _finite(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_finite(v) for v in x]
    return x
