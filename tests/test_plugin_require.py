"""--kp-require: named checks whose skips fail; every check that did not run is listed in the
terminal summary and as JUnit properties; a required check no test evaluated fails the run."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from pytest_kpmodel.errors import KpModelError
from pytest_kpmodel.findings import CheckResult, Finding, Gate
from pytest_kpmodel.required import REQUIRABLE, Ledger, expand, of_marker, parse

# On this CPU machine: fp16 and VRAM cannot run, the CUDA requirement cannot be checked, the
# card is unsigned; the accuracy gate runs.
SPEC = """
import pytest

@pytest.mark.kp_thresholds(box_ap=0.0)
def test_accuracy():
    pass

@pytest.mark.kp_thresholds(box_ap=0.0, max_drop_fp16=0.5)
def test_fp16():
    pass

@pytest.mark.kp_bench(image_size=(64, 96), warmup=1, iters=2, num_images=1, stage_iters=0)
@pytest.mark.kp_thresholds(vram_mib=4096)
def test_vram():
    pass

@pytest.mark.kp_dependencies(python=">=3.8", cuda=">=11.0")
def test_stack():
    pass

@pytest.mark.kp_provenance(sha256=True, signature=False)
def test_unaltered():
    pass
"""


def _properties(xml_path) -> dict[str, list[tuple[str, str]]]:
    out: dict[str, list[tuple[str, str]]] = {}
    for case in ET.parse(xml_path).getroot().iter("testcase"):
        props = [(p.get("name"), p.get("value")) for p in case.iter("property")]
        out[case.get("name")] = props
    return out


def test_skips_are_listed_and_stay_green_without_require(pytester, tiny_card):
    pytester.makepyfile(SPEC)
    result = pytester.runpytest(f"--kp-model={tiny_card}", "--junitxml=junit.xml")
    result.assert_outcomes(passed=4, skipped=1)  # test_fp16 ran its box AP gate: it passes
    out = result.stdout.str()
    assert "kpmodel: checks that did not run" in out
    result.stdout.fnmatch_lines(
        [
            "fp16 in test_skips_are_listed*::test_fp16: fp16 needs a CUDA device; this run uses cpu",
            "vram in *::test_vram: vram_mib=4096* cannot be checked on cpu*",
            "cuda in *::test_stack: *",
            "signature in *::test_unaltered: unsigned: *",
        ]
    )
    assert "REQUIRED" not in out
    props = _properties(pytester.path / "junit.xml")
    assert ("kpmodel not run", "vram: " + props["test_vram"][-1][1].split(": ", 1)[1]) in props[
        "test_vram"
    ]
    assert any(k == "kpmodel not run" and v.startswith("fp16: ") for k, v in props["test_fp16"])
    assert ("kpmodel ran", "python") in props["test_stack"]
    assert any(v.startswith("cuda: ") for k, v in props["test_stack"] if k == "kpmodel not run")
    assert not any(k == "kpmodel not run" for k, _ in props["test_accuracy"])


def test_required_skips_fail_with_the_reason(pytester, tiny_card):
    pytester.makepyfile(SPEC)
    result = pytester.runpytest(
        f"--kp-model={tiny_card}", "--kp-require=fp16,vram,cuda,signature", "--junitxml=j.xml"
    )
    result.assert_outcomes(passed=1, failed=4)
    result.stdout.fnmatch_lines(
        [
            "*kp_thresholds: fp16 did not run and --kp-require requires it: fp16 needs a CUDA*",
            "*kp_thresholds: vram did not run and --kp-require requires it: vram_mib=4096*",
            "*kp_dependencies: cuda did not run and --kp-require requires it: *",
            "*kp_provenance: signature did not run and --kp-require requires it: unsigned*",
        ]
    )
    result.stdout.fnmatch_lines(["REQUIRED fp16 in *::test_fp16: fp16 needs a CUDA device*"])


def test_gpu_group_and_a_run_off_cuda(pytester, tiny_card):
    """``gpu`` requires its members' skips to fail, and the run itself on CUDA: a spec with no
    GPU check at all cannot pass vacuously on a CPU runner."""
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.kp_thresholds(box_ap=0.0)
        def test_accuracy():
            pass
        """
    )
    pytester.makeini("[pytest]\nkp_require = gpu\n")
    result = pytester.runpytest(f"--kp-model={tiny_card}")
    result.assert_outcomes(passed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        ["REQUIRED gpu (the run): the run is not on a CUDA device: this run uses cpu"]
    )


def test_a_required_check_no_test_evaluates_fails_the_run(pytester, tiny_card):
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.kp_thresholds(box_ap=0.0)
        def test_accuracy():
            pass
        """
    )
    result = pytester.runpytest(f"--kp-model={tiny_card}", "--kp-require=vram")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["REQUIRED vram (the run): no test of this run checks it"])
    # without a model, nothing is evaluated: a gate with a forgotten --kp-model is red
    no_model = pytester.runpytest("--kp-require=vram")
    no_model.assert_outcomes(skipped=1)
    assert no_model.ret == pytest.ExitCode.TESTS_FAILED
    no_model.stdout.fnmatch_lines(
        [
            "REQUIRED vram (the run): no test of this run checks it (no --kp-model)",
            "1 kp test(s): *",
        ]
    )


def test_unknown_required_name_lists_the_valid_ones(pytester):
    pytester.makepyfile("def test_x():\n    pass\n")
    result = pytester.runpytest("--kp-require=fp61,vram")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*--kp-require: unknown check 'fp61' (did you mean 'fp16'?); valid names: bf16, *"]
    )
    pytester.makeini("[pytest]\nkp_require = gpu, vrma\n")
    result = pytester.runpytest()
    result.stderr.fnmatch_lines(["*kp_require: unknown check 'vrma' (did you mean 'vram'?)*"])


def test_parse_and_expand():
    assert parse("gpu, fp16 vram") == {"gpu", "fp16", "vram"}
    assert parse(None) == frozenset()
    assert expand({"gpu"}) >= {"gpu", "fp16", "vram", "cuda", "gpu_arch"}
    with pytest.raises(KpModelError, match="'zzz'; valid names: " + ", ".join(sorted(REQUIRABLE))):
        parse("zzz")


def test_of_marker_reads_partial_skips():
    """kp_thresholds with a gate that ran and one that could not: the latter is not run."""
    result = CheckResult(
        "kp_thresholds",
        findings=[Finding("kp_thresholds", "skipped: vram_mib=1 cannot be checked on cpu", "info")],
        gates=[Gate("speed", "FPS (throughput; batch 1, fp32, cpu)", 10.0, 1.0)],
    )
    outcome = of_marker("kp_thresholds", {"fps": 1.0, "vram_mib": 1}, result)
    assert outcome.ran == {"speed"}
    assert outcome.not_run == (("vram", "vram_mib=1 cannot be checked on cpu"),)
    assert outcome.failures(frozenset({"vram"})) == [
        "vram did not run and --kp-require requires it: vram_mib=1 cannot be checked on cpu"
    ]
    assert outcome.failures(frozenset({"fp16"})) == []
    ledger = Ledger(required=frozenset({"vram"}))
    ledger.add("t.py::test", outcome.properties())
    assert [e.required for e in ledger.not_run(None)] == [True]
    assert ledger.never_evaluated(None) == []


def test_fixture_skips_are_listed_and_fail_when_required(pytester, tiny_card):
    pytester.makepyfile(
        """
        import pytest

        def test_drop(kp_precision_drop):
            kp_precision_drop("fp16")

        @pytest.mark.kp_bench(precision="fp16", image_size=(64, 96), warmup=1, iters=2,
                              num_images=1, stage_iters=0)
        def test_bench(kp_bench):
            kp_bench()
        """
    )
    result = pytester.runpytest(f"--kp-model={tiny_card}")
    result.assert_outcomes(skipped=2)
    result.stdout.fnmatch_lines(["fp16 in *::test_drop: fp16 needs a CUDA device*"])
    result.stdout.fnmatch_lines(["fp16 in *::test_bench: *"])
    required = pytester.runpytest(f"--kp-model={tiny_card}", "--kp-require=fp16")
    required.assert_outcomes(failed=2)
    required.stdout.fnmatch_lines(
        [
            "*kp_precision_drop: fp16 did not run and --kp-require requires it: fp16 needs a CUDA*",
            "*kp_bench: fp16 did not run and --kp-require requires it: *",
        ]
    )
