"""How a model is loaded: device, precision, and what the spec allows it to do."""

from __future__ import annotations

from dataclasses import dataclass

PRECISIONS = ("fp32", "fp16", "bf16")


@dataclass(frozen=True)
class LoadOptions:
    device: str = "cpu"
    precision: str = "fp32"
    allow_code: bool = False
