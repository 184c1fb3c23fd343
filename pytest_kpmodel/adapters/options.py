"""How a model is loaded: device, precision, and what the spec allows it to do."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

PRECISIONS = ("fp32", "fp16", "bf16")


@dataclass(frozen=True)
class LoadOptions:
    device: str = "cpu"
    precision: str = "fp32"
    allow_code: bool = False
    # The security scan of the weights (``pytest_kpmodel.security.ScanReport``): state-dict
    # adapters load only what it passed, and scan themselves when it is None.
    scan_report: Any = None
    extra_globals: tuple[str, ...] = ()
    # opt-in allow-list profiles from the spec (kp_security(allowlist=[...])); the card's own
    # [model] allowlist is added by the adapters that read it
    allowlists: tuple[str, ...] = ()
