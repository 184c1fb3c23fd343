"""A detectron2 card end to end through the plugin (pytester), CPU, without detectron2."""

from __future__ import annotations

import os
import pickle

import pytest
from d2_cases import DATA, dataset, make_card

SPEC = """
import pytest

pytestmark = pytest.mark.kp_security

def test_card(kp_card):
    assert kp_card.model.format == "detectron2"

def test_scan(kp_scan):
    assert kp_scan.verdict == "clean"
    print("SCAN_KIND", kp_scan.kind)

def test_predictions(kp_predictions, kp_dataset):
    assert len(kp_predictions.predictions) == len(kp_dataset) == 3
    counts = [len(p) for p in kp_predictions.predictions]
    print("COUNTS", counts)

def test_eval(kp_eval):
    assert 0.0 <= kp_eval.keypoints["AP"] <= 1.0
"""


@pytest.mark.parametrize(("layout", "kind"), [("pkl", "numpy-pickle"), ("pth", "torch-zip")])
def test_spec_runs_on_a_detectron2_card(pytester, layout, kind):
    ann = dataset(pytester.path / "data")
    card = make_card(pytester.path / "model", layout, extra="")
    card.write_text(card.read_text() + f'[dataset]\nannotations = "{ann}"\n')
    pytester.makepyfile(SPEC)
    result = pytester.runpytest(f"--kp-model={card}", "-s", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines([f"*SCAN_KIND {kind}*", "*COUNTS [[]12, 12, 12[]]*"])


def test_malicious_pkl_is_refused_before_loading(pytester):
    marker = pytester.path / "PWNED"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    data = pickle.loads((DATA / "model_final.pkl").read_bytes())
    data["__author__"] = Payload()
    folder = pytester.path / "evil"
    folder.mkdir()
    (folder / "model_final.pkl").write_bytes(pickle.dumps(data, protocol=4))
    card = make_card(folder, weights=folder / "model_final.pkl")
    pytester.makepyfile("def test_model(kp_model):\n    pass\n")
    result = pytester.runpytest(f"--kp-model={card}", "-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*refused to load:*STACK_GLOBAL imports posix.system*"])
    assert not marker.exists()


def test_bad_kwargs_key_is_one_message(pytester):
    folder = pytester.path / "m"
    card = make_card(folder)
    card.write_text(card.read_text() + '"MODEL.ROI_HEADS.SCORE_TRESH_TEST" = 0.5\n')
    pytester.makepyfile(SPEC)
    result = pytester.runpytest(f"--kp-model={card}", "-p", "no:cacheprovider")
    out = result.stdout.str() + result.stderr.str()
    assert '[model.kwargs."MODEL.ROI_HEADS.SCORE_TRESH_TEST"]' in out
    assert 'did you mean "MODEL.ROI_HEADS.SCORE_THRESH_TEST"?' in out
    assert "Traceback" not in out


def test_pickle_none_refuses_a_numpy_pickle(pytester):
    card = make_card(pytester.path / "m")
    pytester.makepyfile(
        "import pytest\n\n@pytest.mark.kp_security(pickle='none')\ndef test_s():\n    pass\n"
    )
    result = pytester.runpytest(f"--kp-model={card}", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*a numpy-pickle file holds a pickle*"])
