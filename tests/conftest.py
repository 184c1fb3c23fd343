from __future__ import annotations

import sys
from pathlib import Path

import pytest

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
