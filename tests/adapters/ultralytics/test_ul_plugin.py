"""An acceptance spec run end to end on an Ultralytics card, and the kp_parity ONNX row."""

from __future__ import annotations

import pytest
import torch
from ul_cases import DATA, card

from kp_factories import make_dataset
from pytest_kpmodel.adapters import load_model
from pytest_kpmodel.adapters.options import LoadOptions
from pytest_kpmodel.bench import parity
from pytest_kpmodel.card import load_card
from pytest_kpmodel.data import load_dataset, load_images

SPEC = """
import pytest

@pytest.mark.kp_security{marker}
def test_secure():
    pass

def test_predicts(kp_model, kp_predictions):
    assert kp_model.num_keypoints == 17
    assert len(kp_predictions.predictions) == 3
    assert sum(len(p) for p in kp_predictions.predictions) > 0
    for p in kp_predictions.predictions:
        assert p.keypoints.shape[1:] == (17, 3)

def test_metrics(kp_eval):
    assert 0.0 <= kp_eval.keypoints["AP"] <= 1.0 and 0.0 <= kp_eval.bbox.AP <= 1.0
"""


def _card(pytester, allowlist: bool):
    data = make_dataset(pytester.path / "data", size=(96, 72))
    extra = f'[dataset]\nannotations = "{data}"\n'
    return card(
        pytester.path / "model", DATA / "yolov8-pose-tiny.pt", allowlist=allowlist, extra=extra
    )


def test_spec_runs_on_an_ultralytics_card(pytester):
    path = _card(pytester, allowlist=True)
    pytester.makepyfile(SPEC.format(marker=""))
    result = pytester.runpytest(f"--kp-model={path}", "--kp-device=cpu")
    result.assert_outcomes(passed=3)


def test_the_marker_can_opt_in_instead_of_the_card(pytester):
    path = _card(pytester, allowlist=False)
    pytester.makepyfile(SPEC.format(marker='(allowlist=["ultralytics"])'))
    result = pytester.runpytest(f"--kp-model={path}", "--kp-device=cpu")
    result.assert_outcomes(passed=3)


def test_without_opt_in_the_spec_is_refused_naming_the_classes(pytester):
    path = _card(pytester, allowlist=False)
    pytester.makepyfile(SPEC.format(marker=""))
    result = pytester.runpytest(f"--kp-model={path}", "--kp-device=cpu")
    result.assert_outcomes(failed=1, errors=2)
    result.stdout.fnmatch_lines(["*refused to load:*ultralytics.nn.modules.head.Pose*"])
    result.stdout.fnmatch_lines(
        ["*kp_security:*ultralytics.nn.tasks.PoseModel, which is not on the allow-list*"]
    )


def test_parity_rows(tmp_path):
    pytest.importorskip("onnxruntime")
    data = make_dataset(tmp_path / "data", size=(96, 72))
    c = load_card(card(tmp_path / "model", DATA / "yolo11-pose-tiny.pt"))
    model = load_model(c, LoadOptions())
    table = parity.run(
        model, c, load_dataset(data), variants=("fp32", "bf16", "fp16", "onnx"),
        measure_speed=False,
        workdir=tmp_path / "parity",
    )  # fmt: skip
    assert table.row("bf16").status == "ok", table.row("bf16").reason  # autocast on the CPU
    fp16 = table.row("fp16")
    assert fp16.status == "skipped" and "needs a CUDA device" in fp16.reason  # model on the CPU
    row = table.row("onnx")
    assert row.status == "ok", row.reason
    assert "dynamic H/W" in row.notes
    assert row.detections == table.row("fp32").detections > 0
    # random-weight boxes clipped to zero area make OKS all-or-nothing per keypoint; the
    # detections themselves agree (next check), the OKS only roughly
    assert row.mean_oks is not None and row.mean_oks > 0.8
    images = [im.float() / 255 for im in load_images(load_dataset(data), [0, 1, 2])]
    (tmp_path / "again").mkdir()
    onnx_model, _, _ = parity.build_variant(model, c, "onnx", images, tmp_path / "again")
    for eager, exported in zip(model.predict(images), onnx_model.predict(images), strict=True):
        torch.testing.assert_close(
            eager.scores.sort().values, exported.scores.sort().values, atol=1e-3, rtol=0
        )
