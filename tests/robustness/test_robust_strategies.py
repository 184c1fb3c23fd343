"""pytest_kpmodel.strategies: parameters, shrinking towards the mildest, profile, import cost."""

from __future__ import annotations

import subprocess
import sys

import pytest
from hypothesis import find, given, settings
from hypothesis import strategies as st

import pytest_kpmodel.strategies as kps
from pytest_kpmodel.robustness.kinds import CORRUPTIONS, GROUPS, KINDS
from pytest_kpmodel.robustness.perturbations import Compose, Perturbation


@settings(max_examples=60, deadline=None, derandomize=True)
@given(p=kps.perturbations(max_severity=4))
def test_draws_are_valid_reproducible_perturbations(p):
    assert isinstance(p, Perturbation) and p.kind in KINDS
    assert 0.0 <= p.severity <= 4.0
    assert eval(repr(p)) == p  # noqa: S307


@settings(max_examples=30, deadline=None, derandomize=True)
@given(p=kps.perturbations(["noise", "hflip"], max_severity=2, min_severity=1, max_steps=3))
def test_groups_compose_and_bounds(p):
    assert isinstance(p, Compose) and 1 <= len(p.steps) <= 3
    for step in p.steps:
        assert step.kind in GROUPS["noise"] + ("hflip",)
        assert 1.0 <= step.severity <= 2.0
    assert eval(repr(p)) == p  # noqa: S307


def test_shrinks_to_the_mildest_failing_perturbation():
    """A "model" that breaks when blur sigma exceeds 1.0 px: hypothesis reports sigma just above
    1 (severity just above 1), default direction, seed 0 - the mildest reproducer."""
    found = find(kps.gaussian_blur(max_severity=5), lambda p: p.p["sigma"] > 1.0,
                 settings=settings(database=None, derandomize=True, max_examples=500))  # fmt: skip
    assert 1.0 < found.severity < 1.01 and found.seed == 0
    chain = find(kps.perturbations(max_steps=4), lambda p: True,
                 settings=settings(database=None, derandomize=True))  # fmt: skip
    assert len(chain.steps) == 1 and chain.steps[0].severity == 0.0
    motion = find(kps.motion_blur(), lambda p: p.severity > 0.5,
                  settings=settings(database=None, derandomize=True))  # fmt: skip
    assert motion.p["angle"] == 0.0  # free parameters shrink to their simplest value too


@settings(max_examples=3 * len(KINDS), deadline=None, derandomize=True)
@given(data=st.data())
def test_every_kind_and_group_has_a_strategy(data):
    name = data.draw(st.sampled_from(tuple(KINDS)))
    assert data.draw(getattr(kps, name)()).kind == name
    group = data.draw(st.sampled_from(tuple(GROUPS)))
    assert data.draw(getattr(kps, group)(2)).kind in GROUPS[group]
    assert data.draw(kps.corruptions()).kind in CORRUPTIONS


def test_strategy_edge_cases():
    c = find(kps.corruptions(), lambda p: True, settings=settings(database=None))
    assert c.severity == 1.0 and c.kind == CORRUPTIONS[0]
    with pytest.raises(ValueError, match="unknown perturbation kind"):
        kps.kind("blurr")
    with pytest.raises(ValueError):
        kps.severities(6)


def test_register_profile():
    name = kps.register_profile()
    assert name == "kpmodel"
    prof = settings.get_profile("kpmodel")
    assert prof.derandomize and prof.deadline is None and prof.database is None
    assert prof.max_examples == 20
    # An in-process pytester run earlier in this session may have left the plugin's profile
    # loaded: restore whichever profile was current, not hypothesis' "default".
    current, name = settings.default, getattr(settings, "_current_profile", None) or "default"
    try:
        kps.register_profile("kpmodel-test", max_examples=7, load=True)
        assert settings.default.max_examples == 7
    finally:
        settings.load_profile(name)
        assert settings.default.max_examples == current.max_examples


def test_import_is_light():
    code = (
        "import sys, pytest_kpmodel.strategies, pytest_kpmodel.robustness.stability, "
        "pytest_kpmodel.robustness.corruption_eval, pytest_kpmodel.robustness.trigger, "
        "pytest_kpmodel.robustness.corruptions; "
        "assert 'torch' not in sys.modules and 'pytest' not in sys.modules, "
        "sorted(m for m in sys.modules if m.startswith(('torch', 'pytest')))"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@given(st.data())
@settings(max_examples=10, deadline=None, derandomize=True)
def test_strategies_mix_with_user_strategies(data):
    p = data.draw(kps.geometric(max_severity=1))
    assert p.kind in GROUPS["geometric"] and p.severity <= 1.0
