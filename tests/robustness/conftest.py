"""Fixtures for the robustness tests; helpers live in ``kp_robust_helpers``."""

from __future__ import annotations

import pytest
import torch
from kp_robust_helpers import BlobModel, FixedModel, TorchvisionAdapter


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """These tests use small tensors: one thread avoids OpenMP stalls on a shared, loaded CPU.
    Restored after each test, so tests elsewhere keep their settings."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny_model():
    from pytest_kpmodel.zoo import keypointrcnn_compact

    torch.manual_seed(0)
    module = keypointrcnn_compact(
        min_size=64, max_size=96, fpn_channels=16, box_head_dim=32, keypoint_head_depth=1,
        keypoint_head_channels=16, box_score_thresh=0.0, box_detections_per_img=10,
    )  # fmt: skip
    return TorchvisionAdapter(module)


@pytest.fixture
def blob_model():
    return BlobModel()


@pytest.fixture
def fixed_model():
    return FixedModel()
