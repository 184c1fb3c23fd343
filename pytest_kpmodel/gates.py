"""``kp_thresholds``, ``kp_no_regression`` and ``kp_claims``: numbers measured in the run against
what the spec (or the vendor's card) requires. Every missed gate is listed at once.

Metric names shared by markers, claims and the report:

=================  ====================================  =========
name               measured as                           better
=================  ====================================  =========
box_ap, box_ap50   COCO box AP@[.5:.95], AP@.5           higher
box_ap75           COCO box AP@.75                       higher
kp_ap, kp_ap50     COCO keypoint OKS-AP@[.5:.95], @.5    higher
kp_ap75, kp_ar     keypoint AP@.75, AR@[.5:.95]          higher
fps                throughput images/s (``kp_bench``)    higher
latency_p50_ms     median latency per batch              lower
latency_p90_ms     90th percentile latency per batch     lower
vram_mib           peak allocated CUDA memory            lower
rpc                relative performance under corruption higher
max_drop_fp16/bf16 AP lost against fp32 (box and kp)     lower
=================  ====================================  =========

With ``confidence=0.95``, accuracy gates compare the lower end of the bootstrap confidence
interval over images instead of the point estimate: a small evaluation set must then clear the
bar with margin.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .bench.thresholds import SPEED, speed_value
from .errors import KpModelError
from .findings import CheckResult, Finding, Gate
from .marker_args import check_marker_args

# name -> (metrics section, stat, label)
ACCURACY: dict[str, tuple[str, str, str]] = {
    "box_ap": ("bbox", "AP", "box AP"),
    "box_ap50": ("bbox", "AP50", "box AP50"),
    "box_ap75": ("bbox", "AP75", "box AP75"),
    "kp_ap": ("keypoints", "AP", "keypoints AP"),
    "kp_ap50": ("keypoints", "AP50", "keypoints AP50"),
    "kp_ap75": ("keypoints", "AP75", "keypoints AP75"),
    "kp_ar": ("keypoints", "AR", "keypoints AR"),
}


DROPS = ("max_drop_fp16", "max_drop_bf16")
THRESHOLD_ARGS = (*ACCURACY, *SPEED, "rpc", *DROPS, "confidence")


def _number(marker: str, key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise KpModelError(f"{marker}({key}={value!r}): expected a number")
    return float(value)


def accuracy_value(metrics, name: str, confidence: float | None = None) -> float:
    section, stat, _ = ACCURACY[name]
    stats = getattr(metrics, section)
    if stats is None:
        raise KpModelError(f"{name}: the evaluation produced no {section} results")
    if confidence is not None:
        interval = (metrics.bootstrap or {}).get(section, {}).get(stat)
        if interval is None or interval.low is None:
            raise KpModelError(
                f"{name}: no bootstrap interval for {section} {stat}; "
                "confidence gates support AP, AP50 and AP75"
            )
        return float(interval.low)
    return float(stats[stat])


def thresholds(session, bench: Mapping[str, Any], /, *args: Any, **kwargs: Any) -> CheckResult:
    """``kp_thresholds(...)``: each named metric against its bound; speed is measured with the
    test's ``kp_bench(...)`` settings (``bench``)."""
    check_marker_args("kp_thresholds", args, kwargs, THRESHOLD_ARGS)
    result = CheckResult("kp_thresholds")
    confidence = kwargs.pop("confidence", None)
    if confidence is not None:
        confidence = _number("kp_thresholds", "confidence", confidence)
        if not 0 < confidence < 1:
            raise KpModelError(f"kp_thresholds(confidence={confidence}): must be in (0, 1)")
    asked = {k: _number("kp_thresholds", k, v) for k, v in kwargs.items()}
    acc = {k: v for k, v in asked.items() if k in ACCURACY}
    if acc:
        metrics = session.eval_at(confidence)
        for name, bound in acc.items():
            label = ACCURACY[name][2]
            if confidence is not None:
                label += f" (lower {confidence:.0%} bound)"
            result.gates.append(
                Gate("accuracy", label, accuracy_value(metrics, name, confidence), bound)
            )
    speed = {k: v for k, v in asked.items() if k in SPEED}
    if speed:
        from .bench.thresholds import busy_finding, missing_gates, speed_gates

        measured = session.bench(**bench)
        gates = speed_gates(measured, speed)
        result.gates += gates
        busy = busy_finding(measured, gates)  # a failure on a busy machine says so
        if busy is not None:
            result.findings.append(busy)
        missing = missing_gates(measured, speed)
        if missing:
            result.skipped = "; ".join(missing)
    if "rpc" in asked:
        rob = session.corruption_eval
        if rob.rpc is None:  # rPC = mPC / clean: undefined when the clean value is 0 (or absent)
            clean = rob.clean_value
            result.findings.append(
                Finding(
                    "robustness.rpc",
                    f"rPC ({rob.primary}) is undefined: the clean {rob.primary} on the "
                    f"{rob.num_images}-image corruption sample is "
                    + (f"{clean:.3f}" if clean is not None else "not measured")
                    + f", so no share of it can be kept (rpc >= {asked['rpc']} asked)",
                )
            )
        else:
            result.gates.append(
                Gate("robustness", f"rPC ({rob.primary})", float(rob.rpc), asked["rpc"])
            )
    for name in DROPS:
        if name in asked:
            precision = name.removeprefix("max_drop_")
            drop = session.precision_drop(precision)
            if drop.skipped:
                result.skipped = drop.skipped
                continue
            for metric, value in drop.drops.items():
                result.gates.append(
                    Gate("accuracy", f"{metric} drop {precision}", value, asked[name], "<=")
                )
    if result.skipped and result.gates:
        # Some gates ran: judge those, report the rest as skipped findings instead.
        result.findings.append(Finding("kp_thresholds", f"skipped: {result.skipped}", "info"))
        result.skipped = None
    return result


NO_REGRESSION_DEFAULTS = {"box_ap": 0.01, "kp_ap": 0.01, "fps": 0.05}
# Fixtures that time the model.
TIMING_FIXTURES = frozenset({"kp_bench", "kp_parity"})


def needs_speed(fixtures: Iterable[str], markers: Iterable[tuple[str, Mapping[str, Any]]]) -> bool:
    """Whether a test times the model (so it skips where timings mean nothing, under xdist):
    it uses a timing fixture, has ``kp_bench(...)``, a speed ``kp_thresholds`` or an fps
    ``kp_no_regression`` (on by default). ``markers``: (name, kwargs) of the test's markers."""
    if TIMING_FIXTURES & set(fixtures):
        return True
    for name, kwargs in markers:
        if name == "kp_bench" or (name == "kp_thresholds" and set(kwargs) & set(SPEED)):
            return True
        fps = kwargs.get("fps", NO_REGRESSION_DEFAULTS["fps"])
        if name == "kp_no_regression" and fps is not None:
            return True
    return False


def no_regression(session, bench: Mapping[str, Any], /, *args: Any, **kwargs: Any) -> CheckResult:
    """``kp_no_regression(box_ap=0.01, kp_ap=0.01, fps=0.05)``: allowed drops against the
    baseline, absolute for accuracy, relative (a fraction) for fps; None turns one off. Both
    models are timed with the test's ``kp_bench(...)`` settings (``bench``)."""
    check_marker_args("kp_no_regression", args, kwargs, (*ACCURACY, "fps"))
    tolerances = {**NO_REGRESSION_DEFAULTS, **kwargs}
    tolerances = {
        k: _number("kp_no_regression", k, v) for k, v in tolerances.items() if v is not None
    }
    result = CheckResult("kp_no_regression")
    base = session.baseline
    acc = [k for k in tolerances if k in ACCURACY]
    if acc:
        mine, theirs = session.eval_at(None), base.eval_at(None)
        for name in acc:
            b = accuracy_value(theirs, name)
            result.gates.append(
                Gate(
                    "accuracy",
                    f"{ACCURACY[name][2]} vs baseline",
                    accuracy_value(mine, name),
                    b - tolerances[name],
                    baseline=b,
                )
            )
    if "fps" in tolerances:
        # Both models in alternating rounds on the same images, gated on the median ratio of
        # their throughputs: drift in the machine's speed (a busy neighbour) cancels out.
        rel = session.bench_vs_baseline(**bench)
        lo, hi = rel.spread
        gate = Gate(
            "speed",
            f"throughput FPS ratio vs baseline ({len(rel.ratios)} alternating rounds, spread "
            f"{lo:.2f}-{hi:.2f})",
            float(rel.ratio),
            1.0 - tolerances["fps"],
            unit="x",
        )
        result.gates.append(gate)
        busy = rel.load.busy if rel.load is not None else None
        if busy and not gate.passed:
            result.findings.append(Finding("speed.load", f"{busy} ({rel.describe()})"))
    return result


def claims(session, bench: Mapping[str, Any], /, *args: Any, tolerance: float = 0.01,
           speed_tolerance: float = 0.1, **kwargs: Any) -> CheckResult:  # fmt: skip
    """``kp_claims(tolerance=0.01, speed_tolerance=0.1)``: the card's ``[claims]`` against what
    this run measured. Accuracy claims may be missed by ``tolerance`` (absolute); speed claims
    by ``speed_tolerance`` (relative), and only count when measured on the same kind of device
    the vendor used - they are skipped unless the spec names ``speed=True`` (then timed with
    the test's ``kp_bench(...)`` settings, ``bench``)."""
    speed = kwargs.pop("speed", False)
    check_marker_args("kp_claims", args, kwargs, ())
    tolerance = _number("kp_claims", "tolerance", tolerance)
    speed_tolerance = _number("kp_claims", "speed_tolerance", speed_tolerance)
    card_claims = session.card.claims
    result = CheckResult("kp_claims")
    if not card_claims:
        result.skipped = f"{session.card.path} has no [claims]"
        return result
    acc = [k for k in card_claims if k in ACCURACY]
    if acc:
        metrics = session.eval_at(None)
        for name in acc:
            claimed = card_claims[name]
            result.gates.append(
                Gate(
                    "claims",
                    f"{ACCURACY[name][2]} (card claims {claimed:.3f})",
                    accuracy_value(metrics, name),
                    claimed - tolerance,
                    baseline=claimed,
                )
            )
    speed_claims = [k for k in card_claims if k in SPEED]
    if speed_claims and not speed:
        result.findings.append(
            Finding(
                "claims.speed",
                f"speed claims ({', '.join(speed_claims)}) not checked: kp_claims(speed=True) "
                "compares them when this machine matches the vendor's",
                "info",
            )
        )
    elif speed_claims:
        from .bench.thresholds import busy_finding

        measured = session.bench(**bench)
        first = len(result.gates)
        for name in speed_claims:
            label, op, unit = SPEED[name]
            claimed = card_claims[name]
            value = speed_value(measured, name)
            if value is None:
                result.findings.append(Finding(f"claims.{name}", f"{label}: not measured", "info"))
                continue
            bound = (
                claimed * (1 - speed_tolerance) if op == ">=" else claimed * (1 + speed_tolerance)
            )
            result.gates.append(
                Gate(
                    "claims",
                    f"{label} (card claims {claimed:g})",
                    float(value),
                    bound,
                    op,
                    baseline=claimed,
                    unit=unit,
                )  # fmt: skip
            )
        busy = busy_finding(measured, result.gates[first:])
        if busy is not None:
            result.findings.append(busy)
    if not result.gates and not result.findings:
        result.skipped = "the card's [claims] name nothing this run measures"
    return result
