"""A re-run whose predictions are cached evaluates from the cache alone: no torch import, no
model load, no device resolution through torch; the analyses nobody asked for are not computed."""

from __future__ import annotations

import json

SPEC = """
import pytest

def test_eval(kp_eval, kp_predictions):
    print("FROM_CACHE", kp_predictions.from_cache)
    assert kp_eval.keypoints["AP"] >= 0 and kp_eval.bbox["AP"] >= 0

@pytest.mark.kp_thresholds(box_ap=0.0, kp_ap=0.0)
def test_gates():
    pass
"""
# What the run imported and computed, at the end of the session (hypothesis' own plugin
# imports hypothesis later, in its terminal summary, in every pytest run).
RECORD = """
import json, sys
import pytest

@pytest.hookimpl(trylast=True)  # after the plugin's, which writes the report
def pytest_sessionfinish(session):
    kp = session.config.pluginmanager.get_plugin("kpmodel")._kp(session.config)
    metrics = kp.computed("predictions") and kp.eval
    json.dump({
        "modules": sorted(m for m in ("torch", "torchvision", "hypothesis") if m in sys.modules),
        "model_loaded": kp.computed("model") is not None,
        "analyses": [a for a in ("bootstrap", "per_keypoint", "keypoint_errors")
                     if metrics and metrics.computed(a)],
    }, open("record.json", "w"))
"""


def _run(pytester, card, *args):
    result = pytester.runpytest_subprocess(f"--kp-model={card}", "-s", *args)
    result.assert_outcomes(passed=2)
    return result, json.loads((pytester.path / "record.json").read_text())


def test_cached_rerun_never_imports_torch(pytester, tiny_card):
    pytester.makeconftest(RECORD)
    pytester.makepyfile(SPEC)
    first, record = _run(pytester, tiny_card)
    first.stdout.fnmatch_lines(["*FROM_CACHE False*"])
    assert "torch" in record["modules"] and record["model_loaded"]  # it predicted

    again, record = _run(pytester, tiny_card)
    again.stdout.fnmatch_lines(["*FROM_CACHE True*"])
    assert record == {"modules": [], "model_loaded": False, "analyses": []}
    # the weights' digest (the cache key) is remembered, not hashed from the file again
    assert len(list((pytester.path / ".pytest_cache/d/kpmodel/digests").glob("*.json"))) == 1


def test_report_computes_the_analyses(pytester, tiny_card):
    """The report asks for the bootstrap and the analyses: then they are computed, once, and
    the model is still not loaded (the report's sample renderings may import torch)."""
    pytester.makeconftest(RECORD)
    pytester.makepyfile(SPEC)
    _run(pytester, tiny_card)
    _, record = _run(pytester, tiny_card, "--kp-report=out")
    assert not record["model_loaded"]
    assert set(record["analyses"]) == {"bootstrap", "per_keypoint", "keypoint_errors"}
    report = json.loads((pytester.path / "out" / "kp-report.json").read_text())
    assert report["metrics"]["bootstrap"]["replicates"] == 200
    assert report["metrics"]["per_keypoint"] and report["metrics"]["keypoint_errors"]
