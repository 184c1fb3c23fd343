"""The JSON layout of ``evaluate(...).to_json()`` (kp-report.json's ``metrics``)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pytest_kpmodel.metrics import evaluate
from pytest_kpmodel.metrics.synthetic import make_coco_set


def test_to_json_layout_and_serialisable():
    gt, results = make_coco_set(34, num_images=15)
    m = evaluate(gt, results, bootstrap=25, seed=3)
    js = m.to_json()
    text = json.dumps(js, allow_nan=False)
    assert json.loads(text) == js
    assert set(js) == {
        "engine",
        "dataset",
        "bbox",
        "keypoints",
        "per_keypoint",
        "pck",
        "pr_curves",
        "bootstrap",
        "keypoint_errors",
    }
    assert list(js["bbox"]) == [
        "AP",
        "AP50",
        "AP75",
        "APs",
        "APm",
        "APl",
        "AR1",
        "AR10",
        "AR100",
        "ARs",
        "ARm",
        "ARl",
    ]
    assert set(js["per_keypoint"]["kp0"]) == {
        "sigma",
        "ap",
        "ap50",
        "ap75",
        "oks",
        "pck@0.05",
        "pck@0.1",
        "pck@0.2",
        "n",
    }
    assert len(js["pr_curves"]["recall"]) == 101 and set(js["pr_curves"]["keypoints"]) == {
        "iou50",
        "iou75",
        "mean",
    }
    assert js["bootstrap"]["replicates"] == 25 and set(js["bootstrap"]["bbox"]["AP"]) == {
        "estimate",
        "low",
        "high",
        "std",
    }
    assert js["bootstrap"]["keypoints"]["AP"]["estimate"] == js["keypoints"]["AP"]
    # the PR curve at IoU 0.5 averages to AP50, as in pycocotools' summarize
    assert np.mean(js["pr_curves"]["bbox"]["iou50"]) == pytest.approx(js["bbox"]["AP50"], abs=1e-12)
    assert np.mean(js["pr_curves"]["keypoints"]["mean"]) == pytest.approx(
        js["keypoints"]["AP"], abs=1e-12
    )
