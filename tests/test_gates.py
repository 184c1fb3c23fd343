"""gates.thresholds on measured values, without a model (a stand-in session)."""

from __future__ import annotations

from types import SimpleNamespace

from pytest_kpmodel import gates


def _session(rpc, clean):
    rob = SimpleNamespace(rpc=rpc, clean_value=clean, primary="keypoints AP", num_images=4)
    return SimpleNamespace(corruption_eval=rob)


def test_rpc_gate_compares_the_measured_rpc():
    result = gates.thresholds(_session(0.3, 0.5), {}, rpc=0.4)
    [gate] = result.gates
    assert (gate.value, gate.threshold, gate.passed) == (0.3, 0.4, False)


def test_rpc_of_a_model_with_no_clean_accuracy_is_a_failing_finding():
    """rPC = mPC / clean is undefined at clean AP 0 (a random model): a finding, no TypeError."""
    result = gates.thresholds(_session(None, 0.0), {}, rpc=0.4)
    assert not result.gates and not result.passed
    [finding] = result.findings
    assert finding.severity == "fail"
    assert "rPC (keypoints AP) is undefined" in finding.message
    assert "clean keypoints AP on the 4-image corruption sample is 0.000" in finding.message
