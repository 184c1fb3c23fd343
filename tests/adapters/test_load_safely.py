"""adapters.state_dict.load_safely: a reader's error is one line naming the file; the scanner's
refusals pass unchanged (the state-dict formats and the Ultralytics adapter load through it)."""

from __future__ import annotations

import pickle

import pytest

import pytest_kpmodel.security as security
from pytest_kpmodel.adapters.options import LoadOptions
from pytest_kpmodel.adapters.state_dict import load_safely
from pytest_kpmodel.errors import AdapterError, RefusedToLoad


def _raising(exc):
    def load(*args, **kwargs):
        raise exc

    return load


@pytest.mark.parametrize("exc", [pickle.UnpicklingError("bad opcode\ndetail"), EOFError("eof"),
                                 RuntimeError("PytorchStreamReader failed\n  at ...")])  # fmt: skip
def test_reader_errors_are_one_line(monkeypatch, exc):
    monkeypatch.setattr(security, "load_state_dict_safely", _raising(exc))
    with pytest.raises(AdapterError) as info:
        load_safely("w.pt", LoadOptions(), "not a readable thing")
    assert str(info.value) == f"w.pt: not a readable thing: {str(exc).splitlines()[0]}"
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_refusals_pass_unchanged_and_kwargs_reach_the_loader(monkeypatch):
    refused = RefusedToLoad("refused to load: w.pt: security.pickle ...")
    monkeypatch.setattr(security, "load_state_dict_safely", _raising(refused))
    with pytest.raises(RefusedToLoad) as info:
        load_safely("w.pt", LoadOptions(), "x")
    assert info.value is refused
    seen = {}
    monkeypatch.setattr(security, "load_state_dict_safely",
                        lambda path, report, **kw: seen.update(path=path, report=report, **kw))  # fmt: skip
    load_safely("w.pt", LoadOptions(), "x", allowlists=("ultralytics",))
    assert seen == {"path": "w.pt", "report": None, "allowlists": ("ultralytics",)}
