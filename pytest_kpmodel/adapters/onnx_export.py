"""Writing an eager module as ONNX with the first of torch's two exporters that works: used by
``bench.export`` (torchvision detectors) and by family adapters that export themselves in their
own layout (``ultralytics.onnx_layout``).

The TorchScript-based exporter (``dynamo=False``, opset ``ONNX_OPSET``; deprecated since torch
2.9 but working) handles data-dependent detection glue; the dynamo exporter traces with
``torch.export`` and fails on it. Every failure becomes part of one ``ExportUnavailable`` reason,
the skip reason of a parity row.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import ExportUnavailable

ONNX_OPSET = 17
EXPORTERS = ("legacy", "dynamo")


def exporter_reason(exc: BaseException) -> str:
    """``Type: first meaningful line`` of an exporter's error: they run to pages, and torch's
    often open with the ``<class ...>`` of a traced value, which says nothing."""
    lines = [line.strip() for line in str(exc).splitlines()]
    lines = [line for line in lines if line and not line.startswith("<class")]
    return f"{type(exc).__name__}: {lines[0][:300]}" if lines else type(exc).__name__


def export_graph(
    module, args: tuple, path: str | Path, attempts: Sequence[tuple[str, dict[str, Any]]]
) -> Path:
    """Write ``module(*args)`` as ONNX at ``path`` with the first exporter of ``attempts`` that
    works: ``(kind, kwargs)`` with ``kind`` ``legacy`` (TorchScript-based, opset
    ``ONNX_OPSET``) or ``dynamo``, and ``kwargs`` for ``torch.onnx.export`` (names, dynamic
    axes or shapes). ``ExportUnavailable`` with every exporter's reason when none works."""
    import torch

    reasons = []
    for kind, kwargs in attempts:
        if kind not in EXPORTERS:
            raise ValueError(f"exporter must be one of {', '.join(EXPORTERS)}, got {kind!r}")
        options = {"dynamo": kind == "dynamo", **kwargs}
        if kind == "legacy":
            options.setdefault("opset_version", ONNX_OPSET)
        try:
            with warnings.catch_warnings(), torch.no_grad():
                warnings.simplefilter("ignore")
                torch.onnx.export(module, args, str(path), **options)
            return Path(path)
        except Exception as exc:  # noqa: BLE001 - every exporter failure becomes a skip reason
            reasons.append(f"{kind} exporter: {exporter_reason(exc)}")
    raise ExportUnavailable("ONNX export failed: " + "; ".join(reasons))
