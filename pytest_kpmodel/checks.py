"""Marker name -> the function that evaluates it against the run.

Each evaluator takes the run (``KpSession``) and the marker's arguments and returns a
``CheckResult``; the plugin turns that into pass, fail (all findings at once) or skip. Keeping the
table here keeps ``plugin.py`` free of feature logic and the features free of pytest.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

from .findings import CheckResult

# marker -> "module:function"; functions have the signature (session, *args, **kwargs).
EVALUATORS: dict[str, str] = {
    "kp_provenance": "pytest_kpmodel.provenance.marker:evaluate",
    "kp_security": "pytest_kpmodel.security.marker:evaluate",
    "kp_thresholds": "pytest_kpmodel.gates:thresholds",
    "kp_no_regression": "pytest_kpmodel.gates:no_regression",
    "kp_claims": "pytest_kpmodel.gates:claims",
    "kp_license": "pytest_kpmodel.policy.marker:evaluate_kp_license",
    "kp_dependencies": "pytest_kpmodel.policy.marker:evaluate_kp_dependencies",
}

# Gates that may measure speed: they also take the test's kp_bench(...) settings, as their second
# positional argument (how to time is the kp_bench marker's to say, not the gate's).
TIMED = frozenset({"kp_thresholds", "kp_no_regression", "kp_claims"})

# Markers whose evaluation needs the model, predictions or metrics (so --kp-model is required).
# All kp_* markers need a card; this set is informational for the skip reason.
MARKERS_DOC: dict[str, str] = {
    "kp_provenance": "kp_provenance(sha256=True, signature=True, trusted_keys=[...], "
    "sources=['https://host/*'], base=None, files='named'): the weights' digest, the files the "
    "card names (present, regular, inside its folder; files='exact': nothing else), the "
    "signature against trusted public keys, the source URL and the base model.",
    "kp_license": "kp_license(allow=[...], deny=[...], copyleft=False, weak_copyleft=False, "
    "commercial=False, unknown=False, noncommercial=False, restricted=False, licenses='model'): "
    "the card's SPDX license (or, with licenses='dependencies', the model's installed "
    "dependencies') against the adopter's policy; copyleft=False refuses all copyleft, "
    "weak_copyleft=True accepts LGPL/MPL/EPL and GPL WITH a linking exception (Classpath).",
    "kp_dependencies": "kp_dependencies(python=..., requires=[...], cuda=..., gpu_arch=..., "
    "os=[...], custom_ops=None, vulnerabilities=True, osv_ignore=[...]): does the model run on "
    "this stack (default: the card's [dependencies]); with --kp-osv-db, known advisories.",
    "kp_security": "kp_security(pickle='strict', network=False, subprocess=False, writes=False, "
    "code=False, allow_globals=[]): static allow-list scan of the weights (pickle='none': no "
    "pickle at all) and what the runtime guard saw while the model loaded and predicted.",
    "kp_thresholds": "kp_thresholds(box_ap=, box_ap50=, box_ap75=, kp_ap=, kp_ap50=, kp_ap75=, "
    "kp_ar=, fps=, latency_p50_ms=, latency_p90_ms=, vram_mib=, rpc=, max_drop_fp16=, "
    "max_drop_bf16=, confidence=): gates on what the run measured; confidence=0.95 gates "
    "accuracy on the lower bound of the bootstrap interval.",
    "kp_no_regression": "kp_no_regression(box_ap=0.01, kp_ap=0.01, fps=0.05): allowed drops "
    "against the baseline model (--kp-baseline or the card's provenance.base).",
    "kp_claims": "kp_claims(tolerance=0.01, speed_tolerance=0.1, speed=False): the card's "
    "[claims] against what this run measured.",
    "kp_corruptions": "kp_corruptions(corruptions=[...], severities=[1, 2, 3, 4, 5], "
    "max_images=50, batch_size=4): how kp_corruption_eval and the rpc gate sweep (once per run).",
    "kp_bench": "kp_bench(batch_size=1, precision='fp32', image_size=(800, 1333), warmup=10, "
    "iters=100, num_images=8, stage_iters=None): how kp_bench, the speed gates and kp_parity "
    "measure. warmup: calls per distinct timed input shape; num_images: the first images of "
    "the set the timed calls cycle through (at most iters x batch_size are used; kp_parity: "
    "the images every variant predicts, default 50); stage_iters: None takes the per-stage "
    "times inside the timed calls (no extra pass) except for R-CNN models on CUDA (a separate "
    "pass of min(iters, 10) calls), 0 turns them off, N forces a separate pass of N calls.",
}


# What each card-data gate does on an unpinned run (a checkpoint passed as --kp-model): the
# vendor's card is what they check, so they never pass without one.
UNPINNED: dict[str, str] = {"kp_provenance": "fail", "kp_license": "fail", "kp_claims": "skip"}


def _unpinned(marker: str, session, kwargs: dict[str, Any]) -> CheckResult | None:
    """The verdict of a card-data gate on an unpinned run; None when it runs as usual (a card,
    or a kp_license whose spec names the expression itself, ``spdx=...``)."""
    from .errors import KpModelError
    from .findings import Finding

    if marker not in UNPINNED or (marker == "kp_license" and kwargs.get("spdx")):
        return None
    try:
        card = session.card
    except KpModelError:
        return None  # the evaluator reports the broken card itself
    if not card.unpinned:
        return None
    from .provenance.unpinned import unpinned_reason

    reason = unpinned_reason(card)
    if UNPINNED[marker] == "skip":
        return CheckResult(marker, skipped=reason)
    return CheckResult(marker, findings=[Finding(f"{marker.removeprefix('kp_')}.unpinned", reason)])


def evaluate(
    marker: str,
    session,
    args: tuple,
    kwargs: dict[str, Any],
    bench: Mapping[str, Any] | None = None,
) -> CheckResult | None:
    """Evaluate one marker; None for markers that only configure (e.g. kp_bench). ``bench``:
    the test's ``kp_bench(...)`` settings, for the gates that time the model."""
    target = EVALUATORS.get(marker)
    if target is None:
        return None
    unpinned = _unpinned(marker, session, kwargs)
    if unpinned is not None:
        return unpinned
    module_name, _, attr = target.partition(":")
    func: Callable[..., CheckResult] = getattr(importlib.import_module(module_name), attr)
    if marker in TIMED:
        return func(session, dict(bench or {}), *args, **kwargs)
    return func(session, *args, **kwargs)
