"""Which machine a benchmark ran on: the device's name for the report, and the GPU, driver,
CUDA and torch versions pytest-benchmark records so ``--benchmark-compare`` knows the machine."""

from __future__ import annotations

import platform
from typing import Any

from .memory import MIB


def device_name(device) -> str:
    import torch

    dev = torch.device(device)
    if dev.type == "cuda":
        try:
            return torch.cuda.get_device_name(dev)
        except Exception:  # noqa: BLE001 - a name is nice to have, never a reason to fail
            return "cuda"
    return _cpu_name()


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "cpu"


def machine_info_extra(bench_entries: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """For ``pytest_benchmark_update_machine_info(config, machine_info)``:
    ``machine_info.update(machine_info_extra(entries))`` — so ``--benchmark-compare`` warns when
    runs come from different GPUs, drivers or torch builds. ``bench_entries``: the run's
    report ``bench`` entries; the busiest load reading among them is ``load`` (``load.py``)."""
    import torch

    from .load import cores, worst

    info: dict[str, Any] = {
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": None,
        "gpu": None,
        "gpu_count": 0,
        "gpu_driver": None,
        "cpu_threads": torch.get_num_threads(),
        "cpu_cores": cores(),
        "load": worst([e.get("load") or {} for e in bench_entries or []]),
    }
    try:  # the distribution's version: importing torchvision costs seconds
        from importlib.metadata import PackageNotFoundError, version

        info["torchvision"] = version("torchvision")
    except PackageNotFoundError:
        info["torchvision"] = None
    if torch.cuda.is_available():
        info["gpu_count"] = torch.cuda.device_count()
        info["gpu"] = torch.cuda.get_device_name(0)
        props = torch.cuda.get_device_properties(0)
        info["gpu_capability"] = f"{props.major}.{props.minor}"
        info["gpu_memory_mib"] = props.total_memory // MIB
        try:
            info["cudnn"] = torch.backends.cudnn.version()
        except Exception:  # noqa: BLE001
            info["cudnn"] = None
        info["gpu_driver"] = _driver_version()
    return info


def _driver_version() -> str | None:
    try:
        import pynvml  # type: ignore[import-not-found]

        pynvml.nvmlInit()
        try:
            v = pynvml.nvmlSystemGetDriverVersion()
            return v.decode() if isinstance(v, bytes) else str(v)
        finally:
            pynvml.nvmlShutdown()
    except Exception:  # noqa: BLE001 - pynvml absent or NVML unusable
        pass
    try:
        with open("/proc/driver/nvidia/version", encoding="utf-8") as f:
            first = f.readline()
        for token in first.split():
            if token[:1].isdigit() and "." in token:
                return token
    except OSError:
        pass
    return None
