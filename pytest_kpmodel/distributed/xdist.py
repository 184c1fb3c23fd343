"""pytest-xdist: workers send their checks and report sections to the controller, which writes
the one report (:func:`worker_output`, :func:`merge_worker_output`), and speed tests skip under
xdist with the reason (:func:`xdist_reason`)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from .environment import xdist_worker

WORKER_OUTPUT_KEY = "kpmodel"
XDIST_REASON = (
    "speed tests do not run under pytest-xdist: parallel workers share the CPU/GPU and distort "
    "every timing; run them with -p no:xdist or -n 0"
)


def xdist_reason(config: Any = None) -> str | None:
    """The skip reason for speed tests when running under pytest-xdist, else None.

    ``config`` is pytest's config (or anything with ``workerinput`` / ``option.numprocesses``
    / ``option.dist``); the ``PYTEST_XDIST_WORKER`` environment variable is checked as well.
    """
    if xdist_worker() is not None:
        return XDIST_REASON
    if config is None:
        return None
    if getattr(config, "workerinput", None) is not None:
        return XDIST_REASON
    option = getattr(config, "option", None)
    n = getattr(option, "numprocesses", None)
    dist = getattr(option, "dist", "no")
    if (n not in (None, 0, "0")) or (dist not in (None, "no")):
        return XDIST_REASON
    return None


def worker_output(session) -> str:
    """What an xdist worker sends its controller: its checks, report sections and warnings
    (JSON: execnet carries only plain data). The caller adds the security section first
    (``report.json_report.add_security_section``): distributed sits below report."""
    return json.dumps(
        {"checks": session.checks, "sections": session.sections, "warnings": session.warnings},
        default=str,
    )


def merge_worker_output(session, text: str) -> None:
    """Add a worker's output to the controller's session, deterministically whatever the order
    the workers finish in: checks sorted by test id, dicts merged key by key (the first value
    wins for a scalar: every worker computes the same metrics), lists extended."""
    data = json.loads(text)
    session.checks.extend(data.get("checks", []))
    session.checks.sort(key=lambda c: (str(c.get("nodeid", "")), str(c.get("marker", ""))))
    _merge_into(session.sections, data.get("sections", {}))
    for w in data.get("warnings", []):
        if w not in session.warnings:
            session.warnings.append(w)


def _merge_into(target: dict[str, Any], extra: Mapping[str, Any]) -> None:
    for k, v in extra.items():
        if k not in target:
            target[k] = v
        elif isinstance(target[k], dict) and isinstance(v, Mapping):
            _merge_into(target[k], v)
        elif isinstance(target[k], list) and isinstance(v, list):
            target[k].extend(x for x in v if x not in target[k])
