"""benchmarks/detectron2_parity.py without detectron2: it refuses to run, and its matching."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[3] / "benchmarks" / "detectron2_parity.py"


def _script():
    spec = importlib.util.spec_from_file_location("detectron2_parity", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_exits_2_without_detectron2():
    if importlib.util.find_spec("detectron2") is not None:
        pytest.skip("detectron2 is importable here")
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--config", "tiny"], capture_output=True, text=True
    )
    assert proc.returncode == 2
    assert "does not build or install it" in proc.stderr


def _det(boxes, labels, scores, kx=0.0):
    n = len(boxes)
    kps = np.zeros((n, 17, 3), np.float32)
    kps[..., 0] = kx
    return {"boxes": np.array(boxes, np.float32).reshape(n, 4), "labels": np.array(labels),
            "scores": np.array(scores, np.float32), "keypoints": kps}  # fmt: skip


def test_compare_figures():
    s = _script()
    ref = [_det([[0, 0, 10, 10], [5, 5, 20, 20]], [1, 1], [0.9, 0.5])]
    same = s.compare(ref, [_det([[0, 0, 10, 10.0004], [5, 5, 20, 20]], [1, 1], [0.9, 0.50002])])
    assert same["matched"] == 2 and same["same_detections"] and same["within_targets"]
    assert same["max_box_diff"] == pytest.approx(4e-4, abs=1e-6)
    off = s.compare(ref, [_det([[0, 0, 10, 10], [5, 5, 20, 20]], [1, 1], [0.9, 0.5], kx=0.01)])
    assert off["same_detections"] and not off["within_targets"]
    missing = s.compare(ref, [_det([[0, 0, 10, 10]], [1], [0.9])])
    assert missing["matched"] == 1 and not missing["same_detections"]
    swapped = s.compare(ref, [_det([[5, 5, 20, 20], [0, 0, 10, 10]], [1, 1], [0.9, 0.5])])
    assert swapped["matched"] == 0
