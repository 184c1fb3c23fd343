"""What this run ran on, for the reproduction header and ``kp-report.json``'s ``environment``."""

from __future__ import annotations

import platform
import sys
from typing import Any


def describe(device: str | None = None) -> dict[str, Any]:
    import torch
    import torchvision

    env: dict[str, Any] = {
        "python": platform.python_version(),
        "platform": sys.platform,
        "machine": platform.machine(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "cuda": torch.version.cuda if torch.cuda.is_available() else None,
        "cuda_build": torch.version.cuda,
        "gpu": None,
        "device": device,
        "cpu_threads": torch.get_num_threads(),
    }
    if torch.cuda.is_available():
        idx = torch.device(device).index if device and device.startswith("cuda") else None
        idx = idx or 0
        props = torch.cuda.get_device_properties(idx)
        env["gpu"] = {
            "name": props.name,
            "capability": f"{props.major}.{props.minor}",
            "memory_mib": props.total_memory // 2**20,
            "count": torch.cuda.device_count(),
        }
    return env
