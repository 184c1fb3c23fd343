"""The speed keys of ``kp_thresholds`` and ``kp_claims`` against a ``BenchResult``: ``fps`` >=
(the throughput FPS), ``latency_p50_ms`` / ``latency_p90_ms`` <= (per batch), ``vram_mib`` <=
(the allocator peak during the timed runs)."""

from __future__ import annotations

from typing import Any

from ..findings import CheckResult, Finding, Gate
from .result import BenchResult

# name -> (label, op, unit), in the order gates are listed
SPEED: dict[str, tuple[str, str, str]] = {
    "fps": ("throughput FPS", ">=", " FPS"),
    "latency_p50_ms": ("latency p50", "<=", " ms"),
    "latency_p90_ms": ("latency p90", "<=", " ms"),
    "vram_mib": ("peak VRAM", "<=", " MiB"),
}
# a gate's label names the setting it was measured at
_GATE_LABELS = {
    "fps": "FPS (throughput; {})",
    "latency_p50_ms": "latency p50 ({})",
    "latency_p90_ms": "latency p90 ({})",
    "vram_mib": "peak VRAM ({})",
}


def speed_value(result: BenchResult, name: str) -> float | None:
    """The measured value a speed key is checked against (None: not measured here)."""
    return {
        "fps": result.fps,
        "latency_p50_ms": result.latency.p50,
        "latency_p90_ms": result.latency.p90,
        "vram_mib": result.peak_vram_mib,
    }[name]


def speed_gates(result: BenchResult, thresholds: dict[str, Any]) -> list[Gate]:
    """Gates for the speed keys of ``thresholds`` (others are ignored). Keys that cannot be
    evaluated here are left out; see ``missing_gates``."""
    s = result.settings
    setting = f"batch {s.batch_size}, {s.precision}, {result.device}"
    gates = []
    for name, (_, op, unit) in SPEED.items():
        value = speed_value(result, name)
        if thresholds.get(name) is None or value is None:
            continue
        label = _GATE_LABELS[name].format(setting)
        gates.append(Gate("speed", label, float(value), float(thresholds[name]), op, unit=unit))
    return gates


def busy_finding(result: Any, gates: list[Gate]) -> Finding | None:
    """When a speed gate failed on a machine that was busy while timing: the finding saying so
    (the load measured during the timed calls), listed with the failed gates."""
    busy = getattr(result, "busy", None)
    if not busy or all(g.passed for g in gates):
        return None
    return Finding(
        "speed.load",
        f"{busy}: the timings measured a shared machine (kp_no_regression(fps=...) compares "
        "with the base model in alternating rounds, which holds on a busy machine)",
        details={"load": dict(getattr(result, "load", {}) or {})},
    )


def missing_gates(result: BenchResult, thresholds: dict[str, Any]) -> list[str]:
    """Why requested speed gates cannot be evaluated here (one sentence each)."""
    reasons = []
    if thresholds.get("vram_mib") is not None and result.peak_vram_mib is None:
        reasons.append(
            f"vram_mib={thresholds['vram_mib']} cannot be checked on {result.device}: "
            "no CUDA device (run with --kp-device=cuda on a GPU)"
        )
    return reasons


def speed_check(result: BenchResult, thresholds: dict[str, Any]) -> CheckResult:
    """Fails with every missed gate at once; otherwise skips when a requested gate could not be
    evaluated (never passes silently); otherwise passes."""
    check = CheckResult("kp_thresholds", gates=speed_gates(result, thresholds))
    busy = busy_finding(result, check.gates)
    if busy is not None:
        check.findings.append(busy)
    if not check.failures:
        missing = missing_gates(result, thresholds)
        if missing:
            check.skipped = "; ".join(missing)
    return check
