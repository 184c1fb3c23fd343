"""A broken card inside a hypothesis test fails at fixture setup, with the same one-line
message the other tests get, before hypothesis draws anything (no @reproduce_failure)."""

from __future__ import annotations


def test_broken_card_fails_a_given_test_at_setup(pytester, tiny_card):
    card = pytester.path / "bad" / "kpmodel.toml"
    card.parent.mkdir()
    card.write_text(tiny_card.read_text().replace("sha256 =", "sha265 ="))
    pytester.makepyfile(
        """
        from hypothesis import given
        import pytest_kpmodel.strategies as kps

        DRAWN = []

        @given(p=kps.perturbations(kinds=["photometric"], max_severity=1))
        def test_stable(kp_stability, p):
            DRAWN.append(p)
            assert kp_stability(p).mean_oks >= 0.0

        def test_card(kp_card):
            pass

        def test_nothing_was_drawn():
            assert DRAWN == []
        """
    )
    result = pytester.runpytest(f"--kp-model={card}", "-p", "no:randomly")
    result.assert_outcomes(errors=2, passed=1)
    out = result.stdout.str()
    message = f"{card}: [[]model.sha265[]] unknown key; did you mean 'sha256'?*"
    result.stdout.fnmatch_lines(
        ["*ERROR at setup of test_stable*", message, "*ERROR at setup of test_card*", message]
    )
    assert "reproduce_failure" not in out and "Falsifying example" not in out
    assert "Traceback" not in out and "CardError" not in out
