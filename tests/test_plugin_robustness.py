"""Robustness fixtures through the plugin: stability with hypothesis, the corruption sweep."""

from __future__ import annotations

import json


def test_stability_passes_and_failure_is_saved(pytester, tiny_card):
    pytester.makepyfile(
        """
        from hypothesis import given, settings
        import pytest_kpmodel.strategies as kps

        @settings(max_examples=2)
        @given(p=kps.perturbations(kinds=["hflip", "brightness"], max_severity=1))
        def test_stable(kp_stability, p):
            r = kp_stability(p, score_threshold=0.0)
            assert r.mean_oks is not None and 0.0 <= r.mean_oks <= 1.0

        @settings(max_examples=2)
        @given(p=kps.perturbations(kinds=["gaussian_noise"], max_severity=2))
        def test_impossible(kp_stability, p):
            assert kp_stability(p, score_threshold=0.0).mean_oks > 1.5
        """
    )
    result = pytester.runpytest(f"--kp-model={tiny_card}", "--kp-report=out")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*reproduce with: kp_stability(Perturbation(*gaussian_noise*"])
    saved = list((pytester.path / "out" / "stability").rglob("*.png"))
    assert saved, "the shrunk failing example is saved as images"
    report = json.loads((pytester.path / "out" / "kp-report.json").read_text())
    assert report["robustness"]["stability"][0]["nodeid"].endswith("test_impossible")


def test_corruption_sweep_and_rpc_gate(pytester, tiny_card):
    pytester.makepyfile(
        """
        import pytest

        pytestmark = pytest.mark.kp_corruptions(
            corruptions=["brightness", "gaussian_noise"], severities=[1, 3], max_images=2
        )

        def test_sweep(kp_corruption_eval):
            r = kp_corruption_eval
            assert set(r.to_dict()["results"]) == {"brightness", "gaussian_noise"}
            assert r.primary == "keypoints.AP"

        @pytest.mark.kp_thresholds(rpc=2.0)
        def test_rpc_gate():
            pass
        """
    )
    result = pytester.runpytest(f"--kp-model={tiny_card}", "--kp-report=out")
    # The random tiny model has AP 0 on noise images: rPC is undefined (None) or 0 -> fails.
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed") == 1 and outcomes.get("failed") == 1
    report = json.loads((pytester.path / "out" / "kp-report.json").read_text())
    assert report["robustness"]["corruption"]["severities"] == [1, 3]


def test_conflicting_sweeps_are_a_usage_error(pytester, tiny_card):
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.kp_corruptions(severities=[1])
        def test_a(kp_corruption_eval):
            pass

        @pytest.mark.kp_corruptions(severities=[2])
        def test_b(kp_corruption_eval):
            pass
        """
    )
    result = pytester.runpytest(f"--kp-model={tiny_card}")
    result.stderr.fnmatch_lines(["*kp_corruptions: the sweep runs once per session*"])
