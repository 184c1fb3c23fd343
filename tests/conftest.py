from __future__ import annotations

import os
import sys
from pathlib import Path

import matplotlib
import numpy  # noqa: F401
import PIL.Image  # noqa: F401
import pycocotools.cocoeval  # noqa: F401
import pytest
import safetensors.torch  # noqa: F401
import torch
import torch._dynamo  # noqa: F401
import torchvision.models.detection  # noqa: F401

# pytester's in-process runs restore sys.modules afterwards, and numpy, torch and the native
# libraries they register cannot be imported twice in one process: they are imported once
# here, before any sandboxed run.
matplotlib.use("Agg")
# Two xdist workers on two cores: one torch thread each, inherited by subprocesses, or every
# parallel region waits for a core the other worker holds (measured: up to 18x slower).
torch.set_num_threads(1)
os.environ.setdefault("OMP_NUM_THREADS", "1")
import matplotlib.pyplot  # noqa: E402, F401

sys.path.insert(0, str(Path(__file__).parent))

from kp_factories import make_dataset, make_model  # noqa: E402


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory) -> Path:
    """Annotations path of a 3-image COCO keypoint set."""
    return make_dataset(tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="session")
def tiny_card(tmp_path_factory, tiny_dataset) -> Path:
    """Card path of a random-weight tiny safetensors model whose [dataset] is tiny_dataset."""
    return make_model(tmp_path_factory.mktemp("model") / "tiny", dataset=tiny_dataset)


@pytest.fixture(autouse=True)
def _sandboxed_runs_are_not_xdist_workers(request, monkeypatch):
    """Under ``pytest -n``, the worker's PYTEST_XDIST_WORKER would make a pytester run look
    like an xdist worker too (and skip its speed tests)."""
    if "pytester" in request.fixturenames:
        monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
