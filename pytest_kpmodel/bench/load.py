"""How busy the machine was while a timed region ran, so a speed figure carries its context.

On a shared machine a model's FPS says as much about the neighbours as about the model: the
example suite's FPS gate measured 1.99 FPS (36 on a quiet machine) beside another CPU-heavy job,
and nothing said why. ``LoadSampler`` brackets a timed region (``start``/``stop``) and records:

- ``runnable``: the mean number of runnable threads on the machine (``procs_running`` of
  ``/proc/stat``, sampled every ``interval_s`` by a daemon thread, the sampler itself not
  counted) — the instantaneous load, which a region of a few seconds needs: the 1-minute load
  average (``load_1m``, also kept) lags by a minute;
- ``other_cpu``: cores' worth of CPU time other processes used during the region (the
  machine's busy time from ``/proc/stat`` minus this process's own);
- ``steal_pct``: CPU time the hypervisor gave to other guests (``steal`` of ``/proc/stat``);
- ``gpu_processes``: other processes holding memory on the GPU (NVML, when ``pynvml`` and a
  CUDA device are there);

against ``cores`` (the CPUs this process may run on) and ``torch_threads``. ``busy`` is the
sentence a failed speed gate adds ("machine busy: load 6.1 on 2 cores during timing").
Every source is optional: where a file or library is missing, that figure is None and never a
reason to fail. No torch, no pytest.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any

BUSY_LOAD = 1.25  # runnable threads per core above which the cores were oversubscribed
BUSY_OTHER_CPU = 0.5  # cores' worth of CPU other processes used during the region
BUSY_STEAL_PCT = 10.0


def cores() -> int:
    """The CPUs this process may run on (its affinity mask; a container's CPU set)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _proc_stat() -> tuple[int, int, int, int] | None:
    """(busy jiffies, steal jiffies, total jiffies, procs_running) from /proc/stat."""
    try:
        with open("/proc/stat", encoding="ascii") as f:
            text = f.read()
    except OSError:
        return None
    busy = steal = total = running = 0
    for line in text.splitlines():
        if line.startswith("cpu "):
            # user nice system idle iowait irq softirq steal guest guest_nice
            values = [int(v) for v in line.split()[1:]]
            values += [0] * (8 - len(values))
            idle = values[3] + values[4]
            total = sum(values[:8])  # guest time is already inside user/nice
            steal = values[7]
            busy = total - idle - steal
        elif line.startswith("procs_running"):
            running = int(line.split()[1])
    return busy, steal, total, running


def _own_jiffies() -> int | None:
    """This process's user + system time, in clock ticks (all its threads)."""
    try:
        t = os.times()
        return round((t.user + t.system) * os.sysconf("SC_CLK_TCK"))
    except (AttributeError, OSError, ValueError):
        return None


def _load_1m() -> float | None:
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


def gpu_processes(exclude_pid: int | None = None) -> list[dict[str, Any]] | None:
    """Other processes on the GPUs (pid, GPU index, MiB used), via NVML; None when NVML cannot
    be asked (no pynvml, no driver)."""
    try:
        import pynvml  # type: ignore[import-not-found]
    except ImportError:
        return None
    me = os.getpid() if exclude_pid is None else exclude_pid
    try:
        pynvml.nvmlInit()
    except Exception:  # noqa: BLE001 - no driver: not a reason to fail a benchmark
        return None
    try:
        found = []
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            for proc in pynvml.nvmlDeviceGetComputeRunningProcesses(handle):
                if proc.pid == me:
                    continue
                used = getattr(proc, "usedGpuMemory", None)
                found.append(
                    {"pid": int(proc.pid), "gpu": index,
                     "used_mib": round(used / 2**20, 1) if used else None}
                )  # fmt: skip
        return found
    except Exception:  # noqa: BLE001
        return None
    finally:
        with contextlib.suppress(Exception):
            pynvml.nvmlShutdown()


@dataclass
class LoadReading:
    """The machine's load over one timed region (see the module docstring)."""

    cores: int
    torch_threads: int | None = None
    runnable: float | None = None
    load_1m: float | None = None
    other_cpu: float | None = None
    steal_pct: float | None = None
    gpu_processes: list[dict[str, Any]] | None = None
    samples: int = 0
    wall_s: float = 0.0
    reasons: list[str] = field(default_factory=list)

    @property
    def load(self) -> float | None:
        """Runnable threads during the region (the 1-minute average where none was sampled)."""
        return self.runnable if self.runnable is not None else self.load_1m

    @property
    def busy(self) -> str | None:
        """'machine busy: load 6.1 on 2 cores during timing; ...' when the machine was shared
        enough to distort the timings; None on a quiet machine."""
        return "machine busy: " + "; ".join(self.reasons) if self.reasons else None

    def judge(self) -> LoadReading:
        reasons = []
        load = self.load
        if load is not None and load > BUSY_LOAD * self.cores:
            reasons.append(f"load {load:.1f} on {self.cores} cores during timing")
        if self.other_cpu is not None and self.other_cpu >= BUSY_OTHER_CPU:
            reasons.append(f"other processes used {self.other_cpu:.1f} of {self.cores} cores")
        if self.steal_pct is not None and self.steal_pct >= BUSY_STEAL_PCT:
            reasons.append(f"CPU steal {self.steal_pct:.0f}%")
        if self.gpu_processes:
            pids = ", ".join(str(p["pid"]) for p in self.gpu_processes[:5])
            reasons.append(f"{len(self.gpu_processes)} other process(es) on the GPU ({pids})")
        self.reasons = reasons
        return self

    def describe(self) -> str:
        """E.g. 'load 2.1 on 2 cores (torch 2 threads), others 0.1 cores, steal 0%'."""
        parts = []
        load = self.load
        threads = f", torch {self.torch_threads} threads" if self.torch_threads else ""
        parts.append(
            f"load {load:.1f} on {self.cores} cores{threads}"
            if load is not None
            else f"{self.cores} cores{threads}"
        )
        if self.other_cpu is not None:
            parts.append(f"others {self.other_cpu:.1f} cores")
        if self.steal_pct is not None:
            parts.append(f"steal {self.steal_pct:.0f}%")
        if self.gpu_processes:
            parts.append(f"{len(self.gpu_processes)} other GPU process(es)")
        return ", ".join(parts)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["load"] = self.load
        d["busy"] = self.busy
        return d


def snapshot(torch_threads: int | None = None) -> LoadReading:
    """The load now (no region): the 1-minute load average and the runnable threads."""
    stat = _proc_stat()
    runnable = max(0.0, stat[3] - 1.0) if stat else None  # minus this thread, reading
    return LoadReading(cores(), torch_threads, runnable, _load_1m(), samples=1).judge()


class LoadSampler:
    """``start()`` / ``stop()`` around a timed region, then ``reading``. ``gpu``: also ask
    NVML for other GPU processes (only for CUDA runs: it costs a driver call)."""

    def __init__(
        self, torch_threads: int | None = None, gpu: bool = False, interval_s: float = 0.1
    ) -> None:
        self.torch_threads = torch_threads
        self.gpu = gpu
        self.interval_s = interval_s
        self.reading: LoadReading | None = None
        self._running: list[int] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._t0 = 0.0
        self._stat0: tuple[int, int, int, int] | None = None
        self._own0: int | None = None

    def start(self) -> None:
        self._stat0, self._own0 = _proc_stat(), _own_jiffies()
        self._t0 = time.monotonic()
        self._running = []
        self._stop.clear()
        if self._stat0 is not None:
            self._thread = threading.Thread(target=self._sample, name="kpmodel-load", daemon=True)
            self._thread.start()

    def _sample(self) -> None:
        while not self._stop.wait(self.interval_s):
            stat = _proc_stat()
            if stat is not None:
                self._running.append(stat[3])

    def stop(self) -> LoadReading | None:
        """The reading (None when ``start`` never ran: the region did not begin)."""
        if not self._t0:
            return None
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        wall = time.monotonic() - self._t0
        stat1, own1 = _proc_stat(), _own_jiffies()
        reading = LoadReading(cores(), self.torch_threads, load_1m=_load_1m(), wall_s=wall)
        if self._running:
            # The sampler is one of the running threads it counts.
            reading.runnable = max(0.0, sum(self._running) / len(self._running) - 1.0)
            reading.samples = len(self._running)
        if self._stat0 is not None and stat1 is not None:
            d_busy, d_steal, d_total = (stat1[i] - self._stat0[i] for i in range(3))
            if d_total > 0:
                reading.steal_pct = 100.0 * d_steal / d_total
            hz = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
            if self._own0 is not None and own1 is not None and wall > 0:
                others = max(0, d_busy - (own1 - self._own0))
                reading.other_cpu = others / hz / wall
        if self.gpu:
            reading.gpu_processes = gpu_processes()
        self.reading = reading.judge()
        return self.reading


def worst(readings: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Of the report's load readings, the busiest one (the one whose load was highest)."""
    found = [r for r in readings if r]
    if not found:
        return None
    return max(found, key=lambda r: (bool(r.get("busy")), r.get("load") or 0.0))
