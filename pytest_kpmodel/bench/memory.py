"""Memory during the timed runs: CUDA allocator peaks, NVML process usage, CPU RSS peak.

CUDA: after warm-up the caller syncs, empties the allocator cache and resets the peak counters
(``torch.cuda.reset_peak_memory_stats``) — warm-up autotuning alone once made a naive peak read
34 GB on an H100 against a 1.2 GB steady state. The peaks read afterwards cover the timed runs
only: ``peak_vram_mib`` is ``torch.cuda.max_memory_allocated`` (what the model's tensors need at
most; the figure the ``vram_mib`` gate checks), ``peak_reserved_mib`` is
``torch.cuda.max_memory_reserved`` (what the caching allocator held from the device), and
``nvml_used_mib`` is the process's usage as the driver sees it (CUDA context included), read once
after the timed runs through ``pynvml`` (``nvidia-ml-py``); without it, ``torch.cuda.
device_memory_used`` (device-wide, every process) when it works, else skipped with the reason.

CPU: ``getrusage(RUSAGE_SELF).ru_maxrss`` is a process-lifetime maximum (an earlier, larger run
would hide this one). On Linux the kernel's own high-water mark is reset just before the timed
runs (writing ``5`` to ``/proc/self/clear_refs``) and ``VmHWM`` is read from
``/proc/self/status`` after them: the exact peak, at no cost during the runs. (Side effect: the
process's ``ru_maxrss`` restarts from there too.) Elsewhere, a sampling thread reads the resident
set (``psutil`` when installed, else ``/proc/self/statm``) every ``interval_s``; it can miss a
spike shorter than the interval, and costs a little: on this 2-core machine a 2 ms sampler made
a Python-heavy tiny model ~5 % slower on one thread. The result is the peak during the timed
runs minus the RSS just before.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from typing import Any

MIB = 2**20


# -- CPU resident set -----------------------------------------------------------------------------
def rss_reader():
    """A zero-argument callable returning the current RSS in bytes, or (None, reason)."""
    try:
        import psutil  # type: ignore[import-not-found]

        proc = psutil.Process()
        return (lambda: proc.memory_info().rss), None
    except ImportError:
        pass
    statm = "/proc/self/statm"
    if os.path.exists(statm):
        page = os.sysconf("SC_PAGE_SIZE")

        def read() -> int:
            with open(statm, "rb") as f:
                return int(f.read().split()[1]) * page

        return read, None
    return None, "no psutil and no /proc/self/statm on this platform: RSS not measured"


_STATUS = "/proc/self/status"
_CLEAR_REFS = "/proc/self/clear_refs"


def _status_kib(field_name: str) -> int:
    with open(_STATUS, encoding="ascii", errors="replace") as f:
        for line in f:
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    raise OSError(f"{field_name} not in {_STATUS}")


def reset_rss_high_water_mark() -> bool:
    """Reset the kernel's peak-RSS mark (Linux >= 4.0); False where that is not possible."""
    try:
        with open(_CLEAR_REFS, "w", encoding="ascii") as f:
            f.write("5")
        _status_kib("VmHWM")
    except OSError:
        return False
    return True


class RssSampler:
    """Peak RSS over an interval (``start`` / ``stop``): the kernel's high-water mark where it
    can be reset (``use_hwm``: None = when available), else a sampling daemon thread."""

    def __init__(self, interval_s: float = 0.002, reader=None, use_hwm: bool | None = None) -> None:
        if reader is None:
            reader, self.unavailable = rss_reader()
        else:
            self.unavailable = None
            use_hwm = False
        self.read = reader
        self.interval_s = float(interval_s)
        self.use_hwm = use_hwm
        self.method = ""
        self.before: int | None = None
        self.peak: int | None = None
        self.samples = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self.use_hwm is not False and reset_rss_high_water_mark():
            self.method = "VmHWM reset via /proc/self/clear_refs"
            self.before = _status_kib("VmRSS") * 1024
            self.peak = None
            return
        if self.read is None:
            return
        self.method = f"sampled every {self.interval_s * 1000:g} ms"
        self.before = self.peak = self.read()
        self.samples = 1
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="kp-rss-sampler", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._sample()

    def _sample(self) -> None:
        value = self.read()
        self.samples += 1
        if self.peak is None or value > self.peak:
            self.peak = value

    def stop(self) -> None:
        if self.method.startswith("VmHWM"):
            try:
                self.peak = max(_status_kib("VmHWM") * 1024, self.before or 0)
            except OSError:
                self.peak = None
            return
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join()
        self._thread = None
        self._sample()  # the state at the end counts too

    def to_json(self) -> dict[str, Any]:
        if self.before is None or self.peak is None:
            return {"rss_skipped": self.unavailable or "not measured"}
        out = {
            "rss_before_mib": self.before / MIB,
            "rss_peak_mib": self.peak / MIB,
            "rss_peak_increase_mib": max(0, self.peak - self.before) / MIB,
            "rss_method": self.method,
        }
        if self._thread is None and not self.method.startswith("VmHWM"):
            out["rss_samples"] = self.samples
        return out


# -- CUDA -------------------------------------------------------------------------------------------
@dataclass
class CudaMemory:
    """Allocator peaks for one device, reset after warm-up (``reset``), read after (``read``)."""

    device: Any  # torch.device of type cuda
    baseline_allocated: int = 0
    values: dict[str, Any] = field(default_factory=dict)

    def reset(self) -> None:
        import torch

        torch.cuda.synchronize(self.device)
        torch.cuda.empty_cache()  # give back what warm-up autotuning cached, so reserved is fair
        torch.cuda.reset_peak_memory_stats(self.device)
        self.baseline_allocated = int(torch.cuda.memory_allocated(self.device))

    def read(self) -> dict[str, Any]:
        import torch

        torch.cuda.synchronize(self.device)
        out: dict[str, Any] = {
            "peak_vram_mib": torch.cuda.max_memory_allocated(self.device) / MIB,
            "peak_reserved_mib": torch.cuda.max_memory_reserved(self.device) / MIB,
            "allocated_before_mib": self.baseline_allocated / MIB,
        }
        used, source = nvml_used_bytes(self.device)
        if used is None:
            out["nvml_skipped"] = source
        else:
            out["nvml_used_mib"] = used / MIB
            out["nvml_source"] = source
        self.values = out
        return out


def nvml_used_bytes(device) -> tuple[int | None, str]:
    """(bytes, source) of this process's memory on ``device`` as NVML reports it; (None, reason)
    when it cannot be read. Falls back to ``torch.cuda.device_memory_used`` (the whole device)."""
    import torch

    index = torch.device(device).index
    index = torch.cuda.current_device() if index is None else index
    reason = "pynvml (nvidia-ml-py) is not installed"
    try:
        import pynvml  # type: ignore[import-not-found]
    except ImportError:
        pynvml = None
    if pynvml is not None:
        try:
            pynvml.nvmlInit()
            try:
                handle = _nvml_handle(pynvml, index)
                pid = os.getpid()
                for p in pynvml.nvmlDeviceGetComputeRunningProcesses(handle):
                    if p.pid == pid and p.usedGpuMemory is not None:
                        return int(p.usedGpuMemory), "pynvml: this process"
                reason = "NVML lists no memory for this process (containers often hide host PIDs)"
            finally:
                pynvml.nvmlShutdown()
        except Exception as exc:  # noqa: BLE001 - any NVML failure is a skip with its reason
            reason = f"NVML query failed: {exc}"
    used_fn = getattr(torch.cuda, "device_memory_used", None)
    if used_fn is not None:
        try:
            return int(used_fn(index)), "torch.cuda.device_memory_used: whole device, all processes"
        except Exception as exc:  # noqa: BLE001
            reason += f"; torch.cuda.device_memory_used failed: {exc}"
    return None, reason


def _nvml_handle(pynvml, index: int):
    """The NVML handle of CUDA device ``index`` (matched by UUID: CUDA and NVML orders differ
    under CUDA_VISIBLE_DEVICES or CUDA_DEVICE_ORDER)."""
    import torch

    uuid = getattr(torch.cuda.get_device_properties(index), "uuid", None)
    if uuid is not None:
        text = str(uuid)
        text = text if text.startswith("GPU-") else f"GPU-{text}"
        try:
            return pynvml.nvmlDeviceGetHandleByUUID(text)
        except Exception:  # noqa: BLE001 - fall back to the index
            pass
    return pynvml.nvmlDeviceGetHandleByIndex(index)


# -- the timed runs -----------------------------------------------------------------------------
class TimedRunMemory:
    """Memory of the timed runs on ``device``: ``start`` once warm-up is over (collects garbage,
    resets the CUDA peaks, starts the RSS sampler), ``stop`` after the runs, then ``to_json``."""

    def __init__(self, device: Any, rss_interval_s: float) -> None:
        self.device = device
        self.cuda = CudaMemory(device) if device.type == "cuda" else None
        self.rss = RssSampler(rss_interval_s)

    def start(self) -> None:
        import gc

        gc.collect()
        if self.cuda is not None:
            self.cuda.reset()
        self.rss.start()

    def stop(self) -> None:
        self.rss.stop()

    def to_json(self) -> dict[str, Any]:
        memory: dict[str, Any] = {}
        if self.cuda is not None:
            memory.update(self.cuda.read())
        else:
            memory["peak_vram_mib"] = None
            memory["vram_skipped"] = f"device {self.device} has no VRAM"
        memory.update(self.rss.to_json())
        return memory
