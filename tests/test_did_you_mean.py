"""A typo is named with its likely fix: card keys, marker arguments and ini keys share one
hint (``errors.did_you_mean``)."""

from __future__ import annotations

from pytest_kpmodel.errors import did_you_mean


def test_hint_names_the_closest_allowed_name():
    assert did_you_mean("sha265", ["name", "sha256", "weights"]) == "did you mean 'sha256'? "
    assert did_you_mean("fsp", ["fps", "kp_ap"]) == "did you mean 'fps'? "
    assert did_you_mean("zzzz", ["fps", "kp_ap"]) == ""


def test_card_key_typo(pytester, tiny_card):
    card = pytester.path / "bad" / "kpmodel.toml"
    card.parent.mkdir()
    card.write_text(tiny_card.read_text().replace("sha256 =", "sha265 ="))
    pytester.makepyfile("def test_card(kp_card):\n    pass\n")
    result = pytester.runpytest(f"--kp-model={card}")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*[[]model.sha265[]] unknown key; did you mean 'sha256'? allowed in [[]model[]]:*"]
    )


def test_top_level_typo(pytester, tiny_card):
    card = pytester.path / "bad" / "kpmodel.toml"
    card.parent.mkdir()
    card.write_text(tiny_card.read_text() + "\n[licence]\nspdx = 'MIT'\n")
    pytester.makepyfile("def test_card(kp_card):\n    pass\n")
    result = pytester.runpytest(f"--kp-model={card}")
    result.stdout.fnmatch_lines(["*[[]licence[]] unknown top-level key; did you mean 'license'?*"])


def test_marker_argument_typo(pytester, tiny_card):
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.kp_thresholds(bxo_ap=0.5)
        def test_typo():
            pass

        @pytest.mark.kp_no_regression(kp_ap=0.01, fsp=0.1, zzzz=1)
        def test_two_typos():
            pass
        """
    )
    result = pytester.runpytest(f"--kp-model={tiny_card}")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(
        [
            "*kp_thresholds: unknown argument(s) bxo_ap; did you mean 'box_ap'? allowed:*",
            "*kp_no_regression: unknown argument(s) fsp, zzzz; fsp: did you mean 'fps'? allowed:*",
        ]
    )


def test_ini_key_typo_stops_the_run(pytester, tiny_card):
    pytester.makepyprojecttoml(f'[tool.pytest.ini_options]\nkp_modle = "{tiny_card}"\n')
    pytester.makepyfile("def test_card(kp_card):\n    pass\n")
    result = pytester.runpytest()
    assert result.ret != 0
    result.stderr.fnmatch_lines(
        ["*pyproject.toml: kp_modle: unknown pytest-kpmodel ini key; did you mean 'kp_model'?*"]
    )


def test_known_ini_key_is_read(pytester, tiny_card):
    pytester.makepyprojecttoml(f'[tool.pytest.ini_options]\nkp_model = "{tiny_card}"\n')
    pytester.makepyfile("def test_card(kp_card):\n    assert kp_card.model.name == 'tiny'\n")
    pytester.runpytest().assert_outcomes(passed=1)


def test_kp_bench_setting_typo():
    import pytest

    from pytest_kpmodel.bench.settings import BenchError, BenchSettings

    with pytest.raises(BenchError, match=r"unknown setting\(s\) itres; did you mean 'iters'\?"):
        BenchSettings.from_kwargs(itres=5)
