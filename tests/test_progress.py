"""Progress of the long steps: its line, bar and time on a terminal; quiet under -q, without a
terminal, or with KPMODEL_PROGRESS=0; shown without a terminal with KPMODEL_PROGRESS=1."""

from __future__ import annotations

import re

import pytest

from pytest_kpmodel import progress


@pytest.mark.parametrize(
    ("verbosity", "isatty", "env", "shown"),
    [
        (0, True, None, True),
        (1, True, "", True),
        (0, False, None, False),  # CI logs
        (-1, True, None, False),  # -q
        (-1, False, "1", False),  # -q wins over the environment
        (0, False, "1", True),
        (0, True, "0", False),
        (0, True, "nonsense", True),
    ],
)
def test_decide(verbosity, isatty, env, shown):
    assert progress.decide(verbosity, isatty, env) is shown


@pytest.fixture
def configured():
    yield progress.configure
    progress.reset()


def test_a_shown_step_says_what_it_does_shows_a_bar_and_its_time(configured, capsys, monkeypatch):
    monkeypatch.delenv(progress.ENV, raising=False)
    assert configured(verbosity=0, isatty=True)
    with progress.step("predicting 4 images with m on cpu", 4) as bar:
        bar(2)
        bar.expect(1)
        bar(3)
    err = capsys.readouterr().err
    assert err.startswith("kpmodel: predicting 4 images with m on cpu\n")
    assert "0/4" in err  # the bar, drawn when it opens
    assert re.search(r"kpmodel: predicting 4 images with m on cpu: done in \d+\.\d s\n$", err)
    assert bar.done == 5 and bar.total == 5


def test_a_quiet_step_writes_nothing_and_still_counts(configured, capsys, monkeypatch):
    monkeypatch.delenv(progress.ENV, raising=False)
    assert not configured(verbosity=0, isatty=False)
    with progress.step("predicting", 3) as bar:
        bar(3)
    assert capsys.readouterr().err == "" and bar.done == 3


def test_a_failed_step_says_it_stopped(configured, capsys):
    configured(verbosity=0, isatty=True)
    with pytest.raises(ValueError), progress.step("sweeping", 2):
        raise ValueError("boom")
    assert "kpmodel: sweeping: stopped in" in capsys.readouterr().err


def test_writes_step_out_of_the_capture(configured, capsys):
    entered = []

    class Suspend:
        def __enter__(self):
            entered.append("in")

        def __exit__(self, *exc):
            entered.append("out")

    configured(verbosity=0, isatty=True, suspend=Suspend)
    progress.say("loading")
    assert entered == ["in", "out"] and capsys.readouterr().err == "kpmodel: loading\n"


SPEC = """
def test_predict(kp_predictions):
    assert len(kp_predictions.predictions) == 3
"""


def test_plugin_shows_the_prediction_step_when_forced(pytester, tiny_card, monkeypatch):
    monkeypatch.setenv(progress.ENV, "1")
    pytester.makepyfile(SPEC)
    result = pytester.runpytest(f"--kp-model={tiny_card}", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    err = result.stderr.str()
    assert re.search(r"kpmodel: predicting 3 images with tiny on cpu\n", err), err
    assert "kpmodel: predicting 3 images with tiny on cpu: done in" in err


@pytest.mark.parametrize(("env", "args"), [("1", ["-q"]), (None, []), ("0", [])])
def test_plugin_is_quiet_under_q_without_a_terminal_or_when_told(
    pytester, tiny_card, monkeypatch, env, args
):
    if env is None:
        monkeypatch.delenv(progress.ENV, raising=False)
    else:
        monkeypatch.setenv(progress.ENV, env)
    pytester.makepyfile(SPEC)
    result = pytester.runpytest(f"--kp-model={tiny_card}", "-p", "no:cacheprovider", *args)
    result.assert_outcomes(passed=1)
    assert "predicting 3 images" not in result.stderr.str() + result.stdout.str()
