"""The run's settings, read from the command line or the ini file by the plugin."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Settings:
    model: Path | None = None
    dataset: Path | None = None
    images: Path | None = None
    device: str | None = None  # None: cuda when available, else cpu
    baseline: Path | None = None
    report: Path | None = None
    max_images: int | None = None
    batch_size: int = 1
    precision: str = "fp32"
    allow_code: bool = False
    allow_box_area: bool = False  # accept 'area' == box w*h everywhere (OCHuman)
    area_from_box: float | None = None  # area of annotations without one: this * w*h
    no_cache: bool = False
    metrics_engine: str = "auto"
    osv_db: Path | None = None
    sbom: Path | None = None
    seed: int = 0
    workers: int | None = None
    summary: Path | None = None  # --kp-summary: the Markdown verdict (report/markdown.py)
    require: frozenset[str] = frozenset()  # --kp-require: checks whose skips fail (required.py)
    cache_dir: Path | None = None  # where predictions are cached; None disables the cache
    rootdir: Path | None = None  # the spec's root: relative paths in markers resolve here


def no_cuda_here() -> bool:
    """True when torch certainly sees no CUDA (or ROCm) device here, known without importing
    torch (about a second, which a cached run that only evaluates need not pay): every device
    hidden by ``CUDA_VISIBLE_DEVICES``, macOS, or Linux without a GPU device node (NVIDIA,
    WSL's /dev/dxg, Jetson's nvhost, ROCm's /dev/kfd). False means "ask torch"."""
    import glob
    import os
    import sys

    if os.environ.get("CUDA_VISIBLE_DEVICES", "unset").strip() in ("", "-1"):
        return True
    if sys.platform == "darwin":
        return True
    if not sys.platform.startswith("linux"):
        return False
    nodes = ("/dev/nvidiactl", "/dev/nvidia0", "/dev/dxg", "/dev/kfd", "/dev/nvhost-ctrl-gpu")
    return not any(os.path.exists(p) for p in nodes) and not glob.glob("/dev/nvidia[0-9]*")


def resolve_device(requested: str | None) -> str:
    """'cuda' when available unless told otherwise; a clear error for an unusable request."""
    if requested == "cpu" or (requested in (None, "", "auto") and no_cuda_here()):
        return "cpu"  # without importing torch
    import torch

    from .errors import KpModelError

    if requested in (None, "", "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(requested)
    except RuntimeError:
        raise KpModelError(
            f"--kp-device={requested!r} is not a device; use cpu, cuda or cuda:N"
        ) from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise KpModelError(f"--kp-device={requested}: CUDA is not available on this machine")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise KpModelError(
                f"--kp-device={requested}: only {torch.cuda.device_count()} CUDA device(s) here"
            )
    elif dev.type != "cpu":
        raise KpModelError(f"--kp-device={requested!r}: only cpu and cuda devices are supported")
    return str(dev)
