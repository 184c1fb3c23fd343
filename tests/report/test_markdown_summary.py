"""--kp-summary: the gate table, findings and checks that did not run as GitHub Markdown."""

from __future__ import annotations

from pytest_kpmodel.report.markdown import render

CHECKS = [
    {
        "nodeid": "specs/test_accuracy.py::test_gates",
        "marker": "kp_thresholds",
        "passed": False,
        "skipped": None,
        "findings": [
            {
                "check": "keypoints AP",
                "message": "keypoints AP 0.332 < 0.400 (-0.068)",
                "severity": "fail",
            },  # fmt: skip
        ],
        "gates": [
            {
                "concern": "accuracy",
                "name": "box AP",
                "value": 0.634,
                "threshold": 0.55,
                "op": ">=",
                "margin": 0.084,
                "baseline": None,
                "passed": True,
                "unit": "",
            },
            {
                "concern": "accuracy",
                "name": "keypoints AP",
                "value": 0.332,
                "threshold": 0.4,
                "op": ">=",
                "margin": -0.068,
                "baseline": None,
                "passed": False,
                "unit": "",
            },
            {
                "concern": "speed",
                "name": "latency p50 | cpu",
                "value": 47.5,
                "threshold": 500.0,
                "op": "<=",
                "margin": 452.5,
                "baseline": None,
                "passed": True,
                "unit": " ms",
            },
        ],  # fmt: skip
    }
]
NOT_RUN = [
    {"name": "fp16", "nodeid": "specs/test_accuracy.py::test_fp16", "required": True,
     "reason": "fp16 needs a CUDA device; this run uses cpu"},
    {"name": "gpu", "nodeid": "", "required": False, "reason": "the run is not on a CUDA device"},
]  # fmt: skip


def test_table_findings_and_not_run():
    text = render(CHECKS, NOT_RUN, model="kpmodel: kp-tiny-mod 1.1.0", outcome="1 failed")
    lines = text.splitlines()
    assert (
        lines[0] == "## kpmodel: ❌ 2/3 gates passed, 1 check(s) failed, 2 did not run (1 required)"
    )
    head = lines.index("| check | value | threshold | margin | baseline | verdict |")
    assert lines[head + 1] == "| --- | ---: | ---: | ---: | ---: | ---: |"
    assert lines[head + 2] == "| **accuracy** |  |  |  |  |  |"
    assert "| box AP | 0.634 | >= 0.550 | +0.084 | - | ✅ pass |" in lines
    assert "| keypoints AP | 0.332 | >= 0.400 | -0.068 | - | ❌ FAIL |" in lines
    # a pipe inside a cell is escaped, so the row keeps its six columns
    assert "| latency p50 \\| cpu | 47.500 ms | <= 500.0 | +452.5 | - | ✅ pass |" in lines
    assert "- **kp_thresholds** in `specs/test_accuracy.py::test_gates`" in lines
    assert "  - keypoints AP 0.332 < 0.400 (-0.068)" in lines
    assert (
        "| fp16 | `specs/test_accuracy.py::test_fp16` | fp16 needs a CUDA device; this run uses "
        "cpu | **required: fails** |"
    ) in lines
    assert "| gpu | (the run) | the run is not on a CUDA device | no |" in lines
    assert "<" not in text.replace("< 0.400", "").replace("<= 500.0", "")  # no HTML
    for line in lines:  # every table row has the column count of its header
        if line.startswith("| "):
            assert line.replace("\\|", "").count("|") in (5, 7)


def test_all_passed_headline():
    passing = [{**CHECKS[0], "passed": True, "findings": [], "gates": CHECKS[0]["gates"][:1]}]
    text = render(passing)
    assert text.splitlines()[0] == "## kpmodel: ✅ 1/1 gates passed"
    assert "### Findings" not in text and "did not run" not in text


def test_summary_file_from_a_run(pytester, tiny_card):
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.kp_thresholds(box_ap=0.0, kp_ap=0.0)
        def test_gates():
            pass

        @pytest.mark.kp_thresholds(box_ap=2.0)
        def test_impossible():
            pass

        @pytest.mark.kp_thresholds(max_drop_fp16=0.5)
        def test_fp16():
            pass
        """
    )
    result = pytester.runpytest(f"--kp-model={tiny_card}", "--kp-summary=out/summary.md")
    result.assert_outcomes(passed=1, failed=1, skipped=1)
    text = (pytester.path / "out" / "summary.md").read_text()
    assert text.startswith("## kpmodel: ❌ 2/3 gates passed, 1 check(s) failed, 1 did not run")
    assert "`kpmodel: tiny 0.1 sha256:" in text
    assert "pytest: 1 failed, 1 passed, 1 skipped" in text
    assert "| box AP | " in text and "| >= 2.000 |" in text and "❌ FAIL" in text
    assert "fp16 needs a CUDA device" in text
    # without a model the file is still written, saying why nothing ran
    empty = pytester.runpytest("--kp-summary=none.md")
    empty.assert_outcomes(skipped=3)
    none = (pytester.path / "none.md").read_text()
    assert none.startswith("## kpmodel: ⚠️ no gate evaluated, 3 did not run")
    assert none.count("no model: pass --kp-model") == 3
