"""The regression corpus (sec_corpus.CORPUS): every technique refused, its payload named, and
never executed - not by the scanner, not by the plugin's loaders.

A positive control runs the ``live`` cases with the loader each technique targets
(``pickle.load``, a ``BytesIO`` as torch.load reads data.pkl, ``torch.load(weights_only=False)``,
``np.load(allow_pickle=True)``) in a subprocess, in another folder, and checks that their
canaries do appear there: without it, "refused" would prove little.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from sec_corpus import CORPUS, Case

from pytest_kpmodel.cli import main
from pytest_kpmodel.errors import RefusedToLoad
from pytest_kpmodel.security import load_state_dict_safely, scan_path
from pytest_kpmodel.security.numpy_pickle import load_numpy_pickle


def _write(case: Case, folder: Path, canary: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / case.filename
    path.write_bytes(case.build(folder, str(canary)))
    return path


def test_corpus_ids_are_unique_and_sourced() -> None:
    ids = [c.id for c in CORPUS]
    assert len(ids) == len(set(ids))
    assert all(c.source and c.names for c in CORPUS)


@pytest.mark.parametrize("case", CORPUS, ids=[c.id for c in CORPUS])
def test_refused_named_never_run(case: Case, tmp_path: Path, no_unpickle) -> None:
    canary = tmp_path / "CANARY"
    path = _write(case, tmp_path / "model", canary)
    report = scan_path(path)
    messages = [f.message for f in report.findings]
    assert report.verdict == "unsafe", messages
    for name in case.names:
        assert name in report.globals, (name, report.globals, messages)
        named = [f for f in report.failures if f.details.get("name") == name]
        assert named, (name, messages)
        assert all(isinstance(f.details.get("offset"), int) for f in named), messages
        if report.kind in ("zip", "torch-zip", "npz"):  # inside an archive: which member
            assert all(f.details.get("member") for f in named), messages
    # the opt-in profiles do not let any of it through either
    assert not scan_path(path, allowlists=("ultralytics",)).ok
    # the plugin's loaders refuse it (torch.load is patched to fail the test if reached)
    with pytest.raises(RefusedToLoad):
        load_state_dict_safely(path)
    with pytest.raises(RefusedToLoad):
        load_numpy_pickle(path, report)
    assert not canary.exists()


def test_corpus_folder_scan_refuses_every_file(tmp_path: Path, capsys, no_unpickle) -> None:
    for i, case in enumerate(CORPUS):
        _write(case, tmp_path / f"{i:03d}-{case.id}", tmp_path / "canaries" / case.id)
    assert main(["scan", "--json", str(tmp_path)]) == 1
    doc = json.loads(capsys.readouterr().out)
    by_folder: dict[str, list[str]] = {}
    for f in doc["files"]:
        by_folder.setdefault(Path(f["path"]).parent.name, []).append(f["verdict"])
    # every technique's folder holds at least one refused file; helper files (a script the
    # payload would run) are refused too: they are code
    assert len(by_folder) == len(CORPUS)
    assert all("unsafe" in v for v in by_folder.values()), by_folder
    assert not (tmp_path / "canaries").exists()


_RUNNER = textwrap.dedent(
    """
    import io, json, os, pickle, sys, warnings
    warnings.simplefilter("ignore")
    jobs = json.loads(sys.argv[1])
    for path, how in jobs:
        os.chdir(os.path.dirname(path))
        try:
            if how == "pickle.load":
                with open(path, "rb") as f:
                    pickle.load(f)
            elif how == "pickle.load(BytesIO)":
                pickle.load(io.BytesIO(open(path, "rb").read()))
            elif how == "torch.load":
                import torch
                torch.load(path, weights_only=False)
            elif how == "np.load":
                import numpy as np
                out = np.load(path, allow_pickle=True)
                if hasattr(out, "files"):
                    [out[k] for k in out.files]
        except BaseException:
            pass
    """
)


def test_live_cases_do_run_under_cpython(tmp_path: Path) -> None:
    """Positive control, in a subprocess: the live techniques really execute their payload
    with the loader they target (each payload only creates its canary in tmp_path)."""
    live = [c for c in CORPUS if c.live]
    jobs, canaries = [], {}
    for case in live:
        canary = tmp_path / "canaries" / case.id
        canary.parent.mkdir(parents=True, exist_ok=True)
        path = _write(case, tmp_path / "files" / case.id, canary)
        jobs.append((str(path), case.live))
        canaries[case.id] = canary
    subprocess.run(
        [sys.executable, "-c", _RUNNER, json.dumps(jobs)],
        timeout=600,
        capture_output=True,
        stdin=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10  # some gadgets start a process that touches it later
    while time.monotonic() < deadline and not all(p.exists() for p in canaries.values()):
        time.sleep(0.2)
    missing = sorted(name for name, p in canaries.items() if not p.exists())
    assert not missing, f"live cases that did not execute under CPython: {missing}"
