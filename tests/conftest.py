from __future__ import annotations

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
