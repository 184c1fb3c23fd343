"""One generated sample per pickle bypass class: flagged, and the marker never appears."""

from __future__ import annotations

import json
import pickletools
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from sec_payloads import (
    PICKLE_SAMPLES,
    Sample,
    bu,
    evil_pickle,
    glob,
    legacy_parts,
    replace_member,
    torch_legacy_bytes,
    torch_zip_bytes,
)

from pytest_kpmodel.security import ScanLimits, scan_bytes, scan_path


def _codes(report) -> set[str]:
    return {f.details["code"] for f in report.findings}


@pytest.mark.parametrize("sample", PICKLE_SAMPLES, ids=[s.name for s in PICKLE_SAMPLES])
def test_pickle_bypass_is_flagged(sample: Sample, tmp_path: Path, no_unpickle) -> None:
    marker = tmp_path / "marker"
    path = tmp_path / sample.filename
    path.write_bytes(sample.build(str(marker)))
    report = scan_path(path)
    assert report.verdict == "unsafe", [f.message for f in report.findings]
    assert not report.ok
    assert set(sample.codes) <= _codes(report), [f.message for f in report.findings]
    assert report.refusal().startswith("refused to load: ")
    assert not marker.exists()


def test_finding_names_the_cause(tmp_path: Path, no_unpickle) -> None:
    """file, byte offset, opcode and the resolved imported name are in the finding."""
    sample = next(s for s in PICKLE_SAMPLES if s.name == "memo_memoize_stack_global")
    data = sample.build(str(tmp_path / "m"))
    report = scan_bytes(data, name="evil.pkl")
    (f,) = [f for f in report.findings if f.details["code"] == "disallowed-global"]
    assert f.details["name"] == "builtins.open"
    assert f.details["opcode"] == "STACK_GLOBAL"
    assert f.details["offset"] == data.index(b"\x93")
    assert f.details["file"] == "evil.pkl"
    assert "builtins.open" in f.message and "evil.pkl" in f.message


def test_protocol_mapping_like_cpython(no_unpickle) -> None:
    """Protocol < 3 maps Python 2 names (fix_imports): __builtin__.eval is builtins.eval."""
    data = b"\x80\x02" + glob("__builtin__", "eval") + bu("1") + b"\x85R."
    report = scan_bytes(data)
    names = {f.details.get("name") for f in report.findings}
    assert "builtins.eval" in names


def test_pickletools_is_fooled_but_we_are_not(no_unpickle) -> None:
    sample = next(s for s in PICKLE_SAMPLES if s.name == "pickletools_abort")
    data = sample.build("/nonexistent/marker")
    with pytest.raises(ValueError):
        pickletools.dis(data, out=open("/dev/null", "w"))  # noqa: SIM115
    assert "builtins.open" in scan_bytes(data).globals


def test_malicious_data_pkl_in_real_archive(tmp_path: Path, no_unpickle) -> None:
    marker = tmp_path / "marker"
    p = tmp_path / "model.pt"
    p.write_bytes(replace_member(torch_zip_bytes(), "data.pkl", evil_pickle(str(marker))))
    report = scan_path(p)
    assert report.kind == "torch-zip" and report.verdict == "unsafe"
    (f,) = [f for f in report.findings if f.details["code"] == "disallowed-global"]
    assert f.details["member"].endswith("/data.pkl")
    assert not marker.exists()


def test_legacy_sequence_is_scanned_whole(tmp_path: Path, no_unpickle) -> None:
    """A payload in the sys-info slot of the legacy format (torch.load runs it) is flagged."""
    marker = tmp_path / "marker"
    parts = legacy_parts(torch_legacy_bytes())
    parts[2] = evil_pickle(str(marker))
    p = tmp_path / "legacy.pt"
    p.write_bytes(b"".join(parts))
    report = scan_path(p)
    assert report.kind == "torch-legacy" and report.verdict == "unsafe"
    assert "builtins.open" in {f.details.get("name") for f in report.findings}
    assert not marker.exists()


def test_legacy_trailing_pickle(tmp_path: Path, no_unpickle) -> None:
    marker = tmp_path / "marker"
    p = tmp_path / "legacy.pt"
    p.write_bytes(torch_legacy_bytes() + evil_pickle(str(marker)))
    report = scan_path(p)
    assert "trailing-data" in _codes(report) and report.verdict == "unsafe"


def test_polyglot_pickle_then_zip(tmp_path: Path, no_unpickle) -> None:
    """A pickle prepended to a valid torch zip: torch.load's legacy path would run it."""
    marker = tmp_path / "marker"
    p = tmp_path / "model.pt"
    p.write_bytes(evil_pickle(str(marker)) + torch_zip_bytes())
    report = scan_path(p)
    assert report.verdict == "unsafe"
    assert {"disallowed-global", "trailing-data"} <= _codes(report)
    assert not marker.exists()


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"\x80\x02" + b"]" + b"(K\x01" * 200 + b".", "limit-max-depth"),
        (b"\x80\x02N" + b"r\xff\xff\xff\x7f" + b".", "limit-max-memo"),
        (b"\x80\x02" + b"N0" * 5000 + b"N.", "limit-max-ops"),
    ],
    ids=["depth", "memo-index", "ops"],
)
def test_resource_limits(data: bytes, code: str, no_unpickle) -> None:
    report = scan_bytes(data, limits=ScanLimits(max_ops=1000, max_depth=50))
    assert code in _codes(report)
    assert report.verdict in ("unverifiable", "unsafe")


# --------------------------------------------------------------------------- positive control

_RUNNER = textwrap.dedent(
    """
    import json, pickle, sys
    jobs = json.loads(sys.argv[1])
    for path, how in jobs:
        data = open(path, "rb").read()
        try:
            if how == "torch":
                import torch
                torch.load(path, weights_only=False)
            else:
                pickle.loads(data)
        except Exception:
            pass
    """
)


def test_samples_are_live_bypasses(tmp_path: Path) -> None:
    """Positive control: CPython really runs these samples (in a separate process, payloads
    only create marker files in tmp_path). Without this the flags above would prove little."""
    jobs, markers = [], {}
    for s in PICKLE_SAMPLES:
        if s.live is None:
            continue
        marker = tmp_path / f"{s.name}.marker"
        path = tmp_path / f"{s.name}.bin"
        path.write_bytes(s.build(str(marker)))
        jobs.append((str(path), "torch" if s.live == "torch" else "pickle"))
        markers[s.name] = marker
    # container-level live samples, loaded by torch.load(weights_only=False)
    m = tmp_path / "legacy_sysinfo.marker"
    parts = legacy_parts(torch_legacy_bytes())
    parts[2] = evil_pickle(str(m))
    (tmp_path / "legacy_sysinfo.pt").write_bytes(b"".join(parts))
    jobs.append((str(tmp_path / "legacy_sysinfo.pt"), "torch"))
    markers["legacy_sysinfo"] = m
    m = tmp_path / "polyglot.marker"
    (tmp_path / "polyglot.pt").write_bytes(evil_pickle(str(m)) + torch_zip_bytes())
    jobs.append((str(tmp_path / "polyglot.pt"), "torch"))
    markers["polyglot_pickle_zip"] = m
    m = tmp_path / "datapkl.marker"
    (tmp_path / "datapkl.pt").write_bytes(
        replace_member(torch_zip_bytes(), "data.pkl", evil_pickle(str(m)))
    )
    jobs.append((str(tmp_path / "datapkl.pt"), "torch"))
    markers["data_pkl"] = m
    subprocess.run(
        [sys.executable, "-c", _RUNNER, json.dumps(jobs)],
        check=True,
        timeout=300,
        capture_output=True,
    )
    missing = [name for name, marker in markers.items() if not marker.exists()]
    assert not missing, f"samples that did not execute under CPython: {missing}"


def test_global_at_eof_without_newline(no_unpickle) -> None:
    """Like _pickle.c, a GLOBAL cut off at EOF fails before importing: not a pickle that runs
    anything, and still not clean."""
    report = scan_bytes(b"cos\nsystemX")
    # so it is text (given as weights: unsupported), and nothing was imported
    assert report.kind == "text" and report.verdict == "unsupported" and not report.globals
