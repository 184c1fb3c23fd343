"""Accuracy gates through the plugin, on an oracle model whose AP is known exactly."""

from __future__ import annotations

import json

from kp_factories import make_dataset, make_oracle


def _dataset(pytester):
    return make_dataset(pytester.path / "data", n=6)


def test_eval_fixture_and_thresholds(pytester):
    card = make_oracle(pytester.path / "oracle", _dataset(pytester))
    pytester.makepyfile(
        """
        import pytest

        def test_eval(kp_eval):
            assert kp_eval.bbox.AP == 1.0 and kp_eval.keypoints["AP"] == 1.0
            assert set(kp_eval.bbox) >= {"AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR100"}
            assert len(kp_eval.keypoints) == 10

        @pytest.mark.kp_thresholds(box_ap=0.9, kp_ap=0.9, kp_ap50=0.95)
        def test_gates_pass():
            pass

        @pytest.mark.kp_thresholds(kp_ap=0.9, confidence=0.95)
        def test_lower_bound_gate():
            pass
        """
    )
    result = pytester.runpytest(
        f"--kp-model={card}", "--kp-allow-code", "--kp-report=out", "--junitxml=junit.xml"
    )
    result.assert_outcomes(passed=3)
    junit = (pytester.path / "junit.xml").read_text()
    assert '<property name="kpmodel keypoints AP value" value="1.0"' in junit
    assert '<property name="kpmodel keypoints AP threshold" value="&gt;= 0.9"' in junit
    result.stdout.fnmatch_lines(["*kpmodel*", "*check*value*threshold*margin*", "[[]accuracy[]]",
                                 "*keypoints AP*1.000*>= 0.900*pass"])  # fmt: skip
    report = json.loads((pytester.path / "out" / "kp-report.json").read_text())
    assert report["metrics"]["keypoints"]["AP"] == 1.0
    assert report["checks"][0]["gates"][0]["name"] == "box AP"


def test_missed_gates_listed_at_once(pytester):
    card = make_oracle(pytester.path / "oracle", _dataset(pytester), shift=6.0)
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.kp_thresholds(box_ap=0.99, kp_ap=0.99, kp_ap50=0.99)
        def test_gates():
            pass
        """
    )
    result = pytester.runpytest(f"--kp-model={card}", "--kp-allow-code")
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "kp_thresholds: keypoints AP " in out and " < 0.990 (-" in out
    assert "kp_thresholds: keypoints AP50" in out
    assert "box AP" not in out.split("FAILURES")[1].split("kpmodel")[0]  # box is exact: passes


def test_claims_show_both_numbers(pytester):
    ds = _dataset(pytester)
    card = make_oracle(pytester.path / "oracle", ds, extra="", keep=0.5)
    card.write_text(card.read_text() + "[claims]\nkp_ap = 0.99\nbox_ap = 0.99\n")
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.kp_claims(tolerance=0.01)
        def test_claims():
            pass
        """
    )
    result = pytester.runpytest(f"--kp-model={card}", "--kp-allow-code")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*keypoints AP (card claims 0.990) 0.* < 0.980*"])


def test_no_regression_against_baseline(pytester):
    ds = _dataset(pytester)
    base = make_oracle(pytester.path / "base", ds)
    worse = make_oracle(pytester.path / "worse", ds, keep=0.5)
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.kp_no_regression(box_ap=0.01, kp_ap=0.01, fps=None)
        def test_no_regression():
            pass

        def test_baseline_eval(kp_baseline_eval):
            assert kp_baseline_eval.keypoints["AP"] == 1.0
        """
    )
    result = pytester.runpytest(f"--kp-model={worse}", f"--kp-baseline={base}", "--kp-allow-code")
    result.assert_outcomes(failed=1, passed=1)
    result.stdout.fnmatch_lines(["*keypoints AP vs baseline 0.* < 0.990*"])
    same = pytester.runpytest(f"--kp-model={base}", f"--kp-baseline={base}", "--kp-allow-code")
    same.assert_outcomes(passed=2)


def test_precision_drop_bf16_and_fp16_skip(pytester, tiny_card):
    pytester.makepyfile(
        """
        import pytest

        def test_bf16(kp_precision_drop):
            drop = kp_precision_drop("bf16")
            assert set(drop.drops) == {"box AP", "keypoints AP"}

        def test_fp16(kp_precision_drop):
            kp_precision_drop("fp16")

        @pytest.mark.kp_thresholds(max_drop_fp16=0.01)
        def test_fp16_gate():
            pass
        """
    )
    result = pytester.runpytest(f"--kp-model={tiny_card}", "-rs")
    result.assert_outcomes(passed=1, skipped=2)
    result.stdout.fnmatch_lines(["*fp16 needs a CUDA device*"])


def test_flip_consistency(pytester, tiny_card):
    pytester.makepyfile(
        """
        def test_flip(kp_flip_consistency):
            f = kp_flip_consistency
            assert f.mean_oks is None or 0.0 <= f.mean_oks <= 1.0
            assert len(f.per_keypoint) == 17
        """
    )
    pytester.runpytest(f"--kp-model={tiny_card}", "--kp-report=out").assert_outcomes(passed=1)
    report = json.loads((pytester.path / "out" / "kp-report.json").read_text())
    assert "pairs" in report["metrics"]["flip_consistency"]


def test_bad_threshold_argument(pytester, tiny_card):
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.kp_thresholds(kp_app=0.5)
        def test_typo():
            pass
        """
    )
    result = pytester.runpytest(f"--kp-model={tiny_card}")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*kp_thresholds: unknown argument(s) kp_app*"])


def test_emulated_bf16_drop_is_skipped_when_projected_too_long(pytester, tiny_card, monkeypatch):
    """Where the CPU emulates bf16 (faked, with a huge slowdown), the bf16 predictions are
    projected from the fp32 time (predicted, then timed on one image when the fp32 set came
    from the cache) and not made; asked to, they are, and once cached they cost nothing."""
    from pytest_kpmodel.bench import precision

    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: False)
    monkeypatch.setattr(precision, "emulated_bf16_slowdown", lambda: 1e9)
    pytester.makepyfile(
        test_drop="""
        import pytest

        def test_bf16(kp_precision_drop):
            kp_precision_drop("bf16")

        @pytest.mark.kp_thresholds(max_drop_bf16=1.0)
        def test_bf16_gate():
            pass
        """,
        test_forced="""
        def test_bf16(kp_precision_drop):
            drop = kp_precision_drop("bf16", run_emulated_bf16=True)
            assert set(drop.drops) == {"box AP", "keypoints AP"}
        """,
    )
    reason = "*bf16 is emulated on this CPU*1000000000x its fp32 time here, so predicting *"
    for _fp32_cached in (False, True):
        result = pytester.runpytest(f"--kp-model={tiny_card}", "-rs", "test_drop.py")
        result.assert_outcomes(skipped=2)
        result.stdout.fnmatch_lines(
            [reason + "over kp_precision_drop's 10 min for it; not run*run_emulated_bf16=True*"]
        )
    pytester.runpytest(f"--kp-model={tiny_card}", "test_forced.py").assert_outcomes(passed=1)
    pytester.runpytest(f"--kp-model={tiny_card}", "test_drop.py").assert_outcomes(passed=2)
