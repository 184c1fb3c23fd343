"""``--kp-model CHECKPOINT``: a bare checkpoint runs unpinned (the card ``kpmodel card init``
would write, in memory); card-data gates never pass; anything else says what was expected."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest

from kp_factories import make_model
from pytest_kpmodel.errors import CardError
from pytest_kpmodel.provenance.unpinned import load_card_or_checkpoint

SPEC = """
import pytest

def test_card(kp_card):
    assert kp_card.unpinned and kp_card.model.sha256 is None
    assert kp_card.model.format == "{fmt}"

def test_predicts(kp_eval):
    assert kp_eval.keypoints is not None

@pytest.mark.kp_provenance(sha256=True, signature=False)
def test_provenance():
    pass

@pytest.mark.kp_license(allow=["MIT"])
def test_license():
    pass

@pytest.mark.kp_license(allow=["MIT"], spdx="MIT")
def test_license_named_by_the_spec():
    pass

@pytest.mark.kp_claims()
def test_claims():
    pass

@pytest.mark.kp_security(pickle="strict")
def test_security():
    pass
"""


@pytest.mark.parametrize("fmt", ["safetensors", "pytorch"])
def test_checkpoint_runs_unpinned(pytester, tmp_path_factory, tiny_dataset, fmt):
    folder = make_model(tmp_path_factory.mktemp("m") / "tiny", fmt=fmt).parent
    (folder / "kpmodel.toml").unlink()  # the vendor shipped no card
    weights = next(folder.iterdir())
    # Beside it, a file that is not the model's: the folder of a bare checkpoint is not scanned.
    (folder / "notes.bin").write_bytes(b"\x80\x02cos\nsystem\n.")
    before = sorted(p.name for p in folder.iterdir())
    pytester.makepyfile(SPEC.format(fmt=fmt))
    result = pytester.runpytest(
        f"--kp-model={weights}", f"--kp-dataset={tiny_dataset}", "--kp-report=out", "-rs"
    )
    result.assert_outcomes(passed=4, failed=2, skipped=1)
    out = result.stdout.str()
    result.stdout.fnmatch_lines([f"kpmodel: {weights.stem} UNPINNED (a checkpoint, no card) *"])
    result.stdout.fnmatch_lines(
        [
            f"*kp_provenance: unpinned: --kp-model is the checkpoint {weights}, not a model card*",
            f"*kpmodel card init {weights}*",
        ]
    )
    assert out.count("unpinned: --kp-model is the checkpoint") >= 3  # provenance, license, claims
    report = json.loads((pytester.path / "out" / "kp-report.json").read_text())
    assert report["unpinned"] is True and report["model"]["sha256_pinned"] is None
    assert sorted(p.name for p in folder.iterdir()) == before  # nothing written beside it


def test_card_run_reports_pinned(pytester, tiny_card):
    pytester.makepyfile("def test_card(kp_card):\n    assert not kp_card.unpinned\n")
    result = pytester.runpytest(f"--kp-model={tiny_card}", "--kp-report=out")
    result.assert_outcomes(passed=1)
    assert "UNPINNED" not in result.stdout.str()
    assert json.loads((pytester.path / "out" / "kp-report.json").read_text())["unpinned"] is False


def test_detectron2_pickle_is_detected_by_content(tmp_path):
    path = tmp_path / "model_final.pkl"
    arrays = {"backbone.bottom_up.stem.conv1.weight": np.zeros((2, 3, 1, 1), np.float32)}
    path.write_bytes(pickle.dumps({"model": arrays, "__author__": "vendor"}, protocol=2))
    card = load_card_or_checkpoint(path)
    assert card.unpinned and card.model.format == "detectron2"
    assert card.model.architecture == "detectron2:keypoint_rcnn_R_50_FPN_3x"
    assert card.path == path and list(tmp_path.iterdir()) == [path]


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("model.bin", bytes(range(256)) * 4),
        ("notes.txt", "just words = [\n"),
        ("config.yaml", "a = 1\n"),
        ("a.png", b""),
    ],
)
def test_neither_card_nor_checkpoint(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content) if isinstance(content, bytes) else path.write_text(content)
    with pytest.raises(CardError) as exc:
        load_card_or_checkpoint(path)
    msg = str(exc.value)
    assert msg.startswith(f"{path}: ")
    assert "neither a model card (kpmodel.toml" in msg and "nor a checkpoint" in msg
    assert f"kpmodel card init {path}" in msg, msg


def test_unknown_state_dict_needs_a_card(tmp_path):
    from safetensors.numpy import save_file

    path = tmp_path / "weights.safetensors"
    save_file({"encoder.layer0.weight": np.zeros((2, 2), np.float32)}, str(path))
    with pytest.raises(CardError, match="match no builder kpmodel knows") as exc:
        load_card_or_checkpoint(path)
    assert f"kpmodel card init {path}" in str(exc.value)


def test_a_toml_card_keeps_its_own_error(tmp_path):
    path = tmp_path / "kpmodel.toml"
    path.write_text("schema = [\n")
    with pytest.raises(CardError, match="not valid TOML"):
        load_card_or_checkpoint(path)


def test_neither_through_the_plugin(pytester, tmp_path):
    path = tmp_path / "model.bin"
    path.write_bytes(b"\x00\xff" * 300)
    pytester.makepyfile("def test_card(kp_card):\n    pass\n")
    result = pytester.runpytest(f"--kp-model={path}")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([f"*{path}: neither a model card*kpmodel card init {path}*"])
    assert "Traceback" not in result.stdout.str()
