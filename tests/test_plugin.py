"""The plugin's behaviour, run the way a user runs it: a spec in a pytester sandbox."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

SPEC = """
def test_card(kp_card):
    assert kp_card.model.name == "tiny"

def test_predictions(kp_predictions, kp_dataset):
    assert len(kp_predictions.predictions) == len(kp_dataset) == 3
    print("FROM_CACHE", kp_predictions.from_cache)

def test_plain():
    pass
"""


def test_skips_without_model(pytester):
    pytester.makepyfile(SPEC)
    result = pytester.runpytest("-rs")
    result.assert_outcomes(passed=1, skipped=2)
    result.stdout.fnmatch_lines(["*no model: pass --kp-model*"])


def test_markers_skip_without_model_and_pass_strict_markers(pytester):
    pytester.makepyfile(
        """
        import pytest
        @pytest.mark.kp_thresholds(kp_ap=0.5)
        def test_gate():
            pass
        """
    )
    result = pytester.runpytest("--strict-markers", "-rs")
    result.assert_outcomes(skipped=1)


def test_help_lists_options_in_their_group(pytester):
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines(
        ["*keypoint model acceptance (pytest-kpmodel)*", "*--kp-model=PATH*"]
    )
    for flag in ("--kp-dataset", "--kp-device", "--kp-baseline", "--kp-report", "--kp-max-images",
                 "--kp-batch-size", "--kp-precision", "--kp-allow-code", "--kp-no-cache"):  # fmt: skip
        assert flag in result.stdout.str()
    result.stdout.fnmatch_lines(["*kp_model (string):*"])


def test_runs_with_model_and_caches(pytester, tiny_card):
    pytester.makepyfile(SPEC)
    first = pytester.runpytest(f"--kp-model={tiny_card}", "-s")
    first.assert_outcomes(passed=3)
    first.stdout.fnmatch_lines(
        [
            "kpmodel: tiny 0.1 sha256:* device=cpu *seed=0 hypothesis-profile=kpmodel load=*/*cores*",
            "*FROM_CACHE False*",
        ]
    )
    second = pytester.runpytest(f"--kp-model={tiny_card}", "-s")
    second.stdout.fnmatch_lines(["*FROM_CACHE True*"])
    forced = pytester.runpytest(f"--kp-model={tiny_card}", "-s", "--kp-no-cache")
    forced.stdout.fnmatch_lines(["*FROM_CACHE False*"])


def test_corrupt_cache_entry_is_rewritten(pytester, tiny_card):
    pytester.makepyfile(SPEC)
    pytester.runpytest(f"--kp-model={tiny_card}").assert_outcomes(passed=3)
    entries = list(pytester.path.joinpath(".pytest_cache").rglob("*.npz"))
    assert len(entries) == 1
    data = bytearray(entries[0].read_bytes())
    data[len(data) // 2] ^= 0xFF
    entries[0].write_bytes(bytes(data))
    again = pytester.runpytest(f"--kp-model={tiny_card}", "-s")
    again.stdout.fnmatch_lines(["*FROM_CACHE False*"])
    assert entries[0].read_bytes() != bytes(data)
    pytester.runpytest(f"--kp-model={tiny_card}", "-s").stdout.fnmatch_lines(["*FROM_CACHE True*"])


def test_ini_option_and_command_line_wins(pytester, tiny_card, tmp_path):
    pytester.makeini(f"[pytest]\nkp_model = {tiny_card}\nkp_max_images = 2\n")
    pytester.makepyfile(
        """
        def test_n(kp_dataset, kp_card):
            print("N", len(kp_dataset), kp_card.model.name)
        """
    )
    pytester.runpytest("-s").stdout.fnmatch_lines(["*N 2 tiny*"])
    pytester.runpytest("-s", "--kp-max-images=1").stdout.fnmatch_lines(["*N 1 tiny*"])
    missing = tmp_path / "absent" / "kpmodel.toml"
    result = pytester.runpytest("-s", f"--kp-model={missing}")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([f"*{missing}: model card not found*"])


def test_card_error_is_one_message(pytester, tiny_card):
    card = pytester.path / "bad" / "kpmodel.toml"
    card.parent.mkdir()
    card.write_text(tiny_card.read_text().replace('name = "tiny"', 'name = "tiny"\nwieghts = "x"'))
    pytester.makepyfile(SPEC)
    result = pytester.runpytest(f"--kp-model={card}")
    result.assert_outcomes(passed=1, errors=2)
    result.stdout.fnmatch_lines(["*kpmodel.toml: [[]model.wieghts[]] unknown key*"])
    assert "Traceback" not in result.stdout.str()


def test_digest_mismatch_is_reported(pytester, tiny_card):
    folder = pytester.path / "m"
    folder.mkdir()
    for f in tiny_card.parent.iterdir():
        (folder / f.name).write_bytes(f.read_bytes())
    card = folder / "kpmodel.toml"
    text = card.read_text()
    start = text.index('sha256 = "') + len('sha256 = "')
    card.write_text(text[:start] + "0" * 64 + text[start + 64 :])
    pytester.makepyfile(SPEC)
    result = pytester.runpytest(f"--kp-model={card}")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(
        ["*kpmodel: warning:*does not match the card's [[]model.sha256[]]*"]
    )


def test_report_has_model_and_environment(pytester, tiny_card):
    pytester.makepyfile(SPEC)
    pytester.runpytest(f"--kp-model={tiny_card}", "--kp-report=out").assert_outcomes(passed=3)
    report = json.loads((pytester.path / "out" / "kp-report.json").read_text())
    assert report["schema"] == 1
    assert report["model"]["name"] == "tiny" and len(report["model"]["sha256"]) == 64
    assert report["environment"]["torch"].startswith("2.")
    assert set(report) >= {"checks", "metrics", "bench", "robustness", "diff"}


def test_bad_option_values(pytester, tiny_card):
    pytester.makepyfile(SPEC)
    result = pytester.runpytest(f"--kp-model={tiny_card}", "--kp-device=tpu")
    result.stdout.fnmatch_lines(["*--kp-device='tpu'*"])
    result = pytester.runpytest(f"--kp-model={tiny_card}", "--kp-batch-size=many")
    result.stderr.fnmatch_lines(["*--kp-batch-size: expected an integer, got 'many'*"])


def test_plugin_import_does_not_import_torch():
    code = "import sys, pytest_kpmodel.plugin; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


# What a run that selects no kp test must not import: the run (session), the card, the
# security package, hypothesis and torch are for kp tests only.
HEAVY = ("torch", "hypothesis", "pytest_kpmodel.session", "pytest_kpmodel.card",
         "pytest_kpmodel.security", "pytest_kpmodel.strategies")  # fmt: skip
RECORD_MODULES = """
import json, sys
def pytest_sessionfinish(session):
    # before hypothesis' own terminal summary, which imports hypothesis in every run
    names = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "hypothesis")
                   or m.startswith("pytest_kpmodel"))
    open("modules.json", "w").write(json.dumps(names))
"""


def _heavy(names: list[str]) -> list[str]:
    return [m for m in names if m == "hypothesis" or m.startswith(HEAVY)]


@pytest.mark.parametrize("args", [(), ("--kp-device=cpu", "--kp-max-images=3")])
def test_configure_without_kp_tests_imports_nothing_heavy(pytester, args):
    """The plugin installed, no kp test selected: configure reads the options and nothing
    else (as hypothesis' plugin does), so the start-up costs nothing measurable."""
    pytester.makeconftest(RECORD_MODULES)
    pytester.makepyfile("def test_plain():\n    pass\n")
    pytester.runpytest_subprocess(*args).assert_outcomes(passed=1)
    names = json.loads((pytester.path / "modules.json").read_text())
    assert "pytest_kpmodel.plugin" in names  # the plugin was loaded
    assert _heavy(names) == []


def test_hypothesis_profile_registered_by_hypothesis_entry_point(pytester):
    """``--hypothesis-profile=kpmodel`` works although the plugin never imports hypothesis:
    hypothesis registers the profile through its entry point when it is imported."""
    pytester.makepyfile(
        """
        from hypothesis import settings

        def test_profile():
            assert settings.get_current_profile_name() == "kpmodel"
            assert settings.default.derandomize and settings.default.database is None
        """
    )
    pytester.runpytest_subprocess("--hypothesis-profile=kpmodel").assert_outcomes(passed=1)


def test_kpmodel_profile_loaded_for_hypothesis_tests(pytester, tiny_card):
    """With a model, a spec whose tests use hypothesis runs under the kpmodel profile unless
    the user picked another."""
    pytester.makepyfile(
        """
        from hypothesis import settings

        def test_profile():
            print("PROFILE", settings.get_current_profile_name())
        """
    )
    result = pytester.runpytest_subprocess(f"--kp-model={tiny_card}", "-s")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*PROFILE kpmodel*"])
    result = pytester.runpytest_subprocess(
        f"--kp-model={tiny_card}", "-s", "--hypothesis-profile=default"
    )
    result.stdout.fnmatch_lines(["*PROFILE default*"])


def test_a_specs_own_settings_inherit_the_kpmodel_profile(pytester, tiny_card):
    """A test's ``@settings(...)``, made when collection imports its module, inherits the
    kpmodel profile (derandomized, no example database): loaded only after collection, it
    ran randomized and replayed failures from ``.hypothesis``."""
    pytester.makepyfile(
        """
        from hypothesis import given, settings, strategies as st

        OWN = settings(max_examples=3, deadline=None)

        @OWN
        @given(st.integers())
        def test_own_settings(n):
            assert OWN.derandomize and OWN.database is None
        """
    )
    result = pytester.runpytest_subprocess(f"--kp-model={tiny_card}", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


@pytest.mark.parametrize("flag", ["--kp-max-images=0"])
def test_invalid_counts(pytester, tiny_card, flag):
    pytester.makepyfile(SPEC)
    result = pytester.runpytest(f"--kp-model={tiny_card}", flag)
    result.stdout.fnmatch_lines(["*--kp-max-images must be >= 1*"])


def test_fresh_process_loads_and_predicts_under_the_guard(pytester, tiny_card):
    """In a fresh interpreter torchvision loads its native ops on first import: that must not
    count as the model's doing (in-process runs here have torchvision imported already)."""
    pytester.makepyfile(SPEC)
    result = pytester.runpytest_subprocess(f"--kp-model={tiny_card}", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)
