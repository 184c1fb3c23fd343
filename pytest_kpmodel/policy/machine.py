"""What this machine looks like to the dependency checks: a ``Platform``, probed once.

``probe_platform(device)`` reads Python, the OS, torch's version and CUDA/HIP build, and the GPU the
model would run on (none on ``device="cpu"``). Tests describe a GPU machine on a CPU-only one by
building a ``Platform`` themselves.
"""

from __future__ import annotations

import platform as _platform
import sys
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Platform:
    """The facts the dependency checks compare against (``probe_platform`` reads them)."""

    python: str  # "3.11.9"
    sys_platform: str  # "linux", "darwin", "win32"
    machine: str  # "x86_64", "aarch64", "arm64", "AMD64"
    torch: str | None = None  # torch.__version__, None when torch cannot be imported
    torch_error: str | None = None  # why torch could not be imported
    cuda_build: str | None = None  # torch.version.cuda: the CUDA runtime torch was built with
    hip_build: str | None = None  # torch.version.hip (ROCm builds)
    gpu: str | None = None  # name of the GPU the model would run on; None when none is used
    no_gpu_reason: str | None = None  # why gpu is None
    capability: tuple[int, int] | None = None  # torch.cuda.get_device_capability()
    arch_list: tuple[str, ...] = ()  # torch.cuda.get_arch_list(): what this torch build targets


def probe_platform(device: str | None = None) -> Platform:
    """This machine. ``device`` is the run's ``--kp-device``: with ``cpu`` no GPU is used."""
    base = dict(
        python=_platform.python_version(),
        sys_platform=sys.platform,
        machine=_platform.machine(),
    )
    try:
        import torch
    except Exception as exc:  # ImportError, or a broken install raising anything else
        return Platform(
            **base,
            torch_error=f"torch cannot be imported ({type(exc).__name__}: {exc})",
            no_gpu_reason="torch is not installed",
        )
    info: dict[str, Any] = dict(
        torch=str(torch.__version__),
        cuda_build=getattr(torch.version, "cuda", None),
        hip_build=getattr(torch.version, "hip", None),
    )
    if device is not None and str(device).split(":")[0] not in ("cuda", "auto", ""):
        return Platform(
            **base, **info, no_gpu_reason=f"the model runs on {device!r}, not a CUDA GPU"
        )
    if not torch.cuda.is_available():
        return Platform(**base, **info, no_gpu_reason="no CUDA GPU is available")
    index = torch.device(device).index if device and str(device).startswith("cuda") else None
    index = index or 0
    return Platform(
        **base,
        **info,
        gpu=torch.cuda.get_device_name(index),
        capability=tuple(torch.cuda.get_device_capability(index)),
        arch_list=tuple(torch.cuda.get_arch_list()),
    )
