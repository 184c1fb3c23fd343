"""The run's public face: what it has computed, its once-per-run settings, its scratch folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_kpmodel.errors import KpModelError
from pytest_kpmodel.session import PIECES, KpSession
from pytest_kpmodel.settings import Settings


def test_computed_answers_without_computing(tiny_card):
    kp = KpSession(Settings(model=tiny_card))
    assert all(kp.computed(piece) is None for piece in PIECES)
    card = kp.card
    assert kp.computed("card") is card
    assert kp.computed("scan") is None and kp.computed("model") is None  # still not computed
    assert kp.computed("dataset") is None
    dataset = kp.dataset
    assert kp.computed("dataset") is dataset


def test_computed_refuses_a_name_that_is_no_piece():
    with pytest.raises(ValueError, match="'_scan' is not a piece of the run"):
        KpSession(Settings()).computed("_scan")


def test_a_failed_piece_is_not_computed_and_fails_again_the_same(tmp_path):
    kp = KpSession(Settings(model=tmp_path / "missing.toml"))
    with pytest.raises(KpModelError) as first:
        _ = kp.card
    with pytest.raises(KpModelError) as second:
        _ = kp.card
    assert first.value is second.value
    assert kp.computed("card") is None


def test_dataset_source_is_the_option_else_the_card(tiny_card, tiny_dataset, tmp_path):
    own = KpSession(Settings(model=tiny_card))
    ann, images = own.dataset_source()
    assert ann == own.card.dataset.annotations == tiny_dataset
    assert images == own.card.dataset.images
    other = KpSession(Settings(model=tiny_card, dataset=tmp_path / "a.json"))
    assert other.dataset_source() == (tmp_path / "a.json", None)  # the card's images do not follow
    both = KpSession(Settings(model=tiny_card, dataset=tmp_path / "a.json", images=tmp_path))
    assert both.dataset_source() == (tmp_path / "a.json", tmp_path)
    pinned = KpSession(Settings(model=tiny_card, images=tmp_path))
    assert pinned.dataset_source() == (tiny_dataset, tmp_path)


def test_the_baseline_reads_the_same_set(tiny_card, tiny_dataset):
    kp = KpSession(Settings(model=tiny_card, baseline=tiny_card))
    assert kp.baseline.settings.dataset == tiny_dataset
    assert kp.baseline.settings.images == kp.card.dataset.images
    assert kp.baseline.dataset_source() == kp.dataset_source()


def test_close_removes_the_scratch_folder_with_the_baselines_inside(tiny_card):
    kp = KpSession(Settings(model=tiny_card, baseline=tiny_card))
    run_dir = kp.run_dir
    (run_dir / "export.onnx").write_bytes(b"x")
    base_dir = kp.baseline.run_dir
    assert base_dir.parent == run_dir and kp.computed("run_dir") == run_dir
    kp.close()
    assert not run_dir.exists()
    assert kp.computed("run_dir") is None
    kp.close()  # twice is fine


def test_a_session_is_a_context_manager(tiny_card):
    with KpSession(Settings(model=tiny_card)) as kp:
        run_dir = kp.run_dir
        assert run_dir.is_dir()
    assert not run_dir.exists()


def test_close_without_a_scratch_folder_touches_nothing(tiny_card):
    kp = KpSession(Settings(model=tiny_card))
    kp.close()
    assert kp.computed("run_dir") is None


def test_configure_reads_the_run_wide_markers():
    kp = KpSession(Settings())
    kp.configure(
        security=[("t.py::a", (), {"network": True}), ("t.py::b", (), {"writes": True})],
        corruptions=[("t.py::c", (), {"severities": [1]}), ("t.py::d", (), {"severities": [1]})],
        parity_bench=[("t.py::e", (), {"iters": 5, "image_size": [96, 128]})],
    )
    assert kp.security_policy.network and kp.security_policy.writes
    assert kp.corruption_config.severities == (1,)
    assert kp.parity_bench == {"iters": 5, "image_size": [96, 128]}
    fresh = KpSession(Settings())
    fresh.configure()
    assert fresh.corruption_config is None and fresh.parity_bench == {}


@pytest.mark.parametrize(
    ("markers", "message"),
    [
        ({"security": [("t.py::a", (), {"netwrok": True})]}, "t.py::a: kp_security: unknown"),
        (
            {"corruptions": [("t.py::a", (), {"severities": [1]}), ("t.py::b", (), {})]},
            "kp_corruptions: the sweep runs once per session, but these tests ask for different "
            "ones: t.py::a, t.py::b",
        ),
        (
            {"parity_bench": [("t.py::a", (), {"iters": 5}), ("t.py::b", (), {})]},
            "kp_parity: the variants table (timed with the test's kp_bench settings) runs once "
            "per session, but these tests ask for different ones: t.py::a, t.py::b",
        ),
    ],
)
def test_configure_names_the_tests_that_disagree(markers, message):
    with pytest.raises(KpModelError) as err:
        KpSession(Settings()).configure(**markers)
    assert str(err.value).startswith(message)


def test_run_folder_is_removed_at_the_end_of_the_run(pytester, tiny_card):
    """The plugin closes the run: exports and whatever model code wrote do not outlive it."""
    pytester.makepyfile(
        """
        from pathlib import Path

        def test_writes_into_the_run_folder(kp_session, kp_model):
            folder = kp_session.run_dir
            (folder / "model.onnx").write_bytes(b"onnx")
            Path("run_dir.txt").write_text(str(folder))
            assert folder.is_dir()
        """
    )
    result = pytester.runpytest(f"--kp-model={tiny_card}", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    folder = Path((pytester.path / "run_dir.txt").read_text())
    assert folder.name.startswith("kpmodel-run-")
    assert not folder.exists()
