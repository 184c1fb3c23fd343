from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def site(tmp_path) -> Path:
    """An empty folder to write fake ``*.dist-info`` into; pass ``paths=[str(site)]``."""
    path = tmp_path / "site"
    path.mkdir()
    return path
