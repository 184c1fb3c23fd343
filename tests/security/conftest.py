from __future__ import annotations

import _pickle
import pickle
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))


def _refuse(*args, **kwargs):
    raise AssertionError("the scanner must never unpickle anything")


class _RefusingUnpickler:
    def __init__(self, *args, **kwargs):
        _refuse()


@pytest.fixture
def no_unpickle(monkeypatch):
    """Make every way of unpickling raise while the test runs (the scanner must not use them)."""
    for mod in (pickle, _pickle):
        monkeypatch.setattr(mod, "loads", _refuse)
        monkeypatch.setattr(mod, "load", _refuse)
        monkeypatch.setattr(mod, "Unpickler", _RefusingUnpickler)
    torch = sys.modules.get("torch")
    if torch is not None:
        monkeypatch.setattr(torch, "load", _refuse)


@pytest.fixture(scope="session")
def torch_files(tmp_path_factory):
    """Real torch.save outputs (small): state dicts, a checkpoint, legacy format, dtypes."""
    from sec_real import make_real_files

    return make_real_files(tmp_path_factory.mktemp("real"))
