from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from kp_report_helpers import rich_report, tiny_models  # noqa: E402


@pytest.fixture(scope="session")
def report_models():
    """(model, base): a tiny random Keypoint R-CNN and a perturbed copy, as KeypointModels."""
    return tiny_models()


@pytest.fixture(scope="session")
def rich_dir(tmp_path_factory, report_models) -> Path:
    """A report folder holding a rich kp-report.json (every section) and its artifact images."""
    from pytest_kpmodel.report import json_report

    folder = tmp_path_factory.mktemp("rich-report")
    json_report.write(rich_report(folder, *report_models), folder)
    return folder


@pytest.fixture(scope="session")
def rich(rich_dir) -> dict:
    """The rich report as the renderer sees it: read back from the JSON file."""
    return json.loads((rich_dir / "kp-report.json").read_text())
