"""``kpmodel scan``: output per finding, exit codes 0/1/2, --json, extensions."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
from sec_payloads import evil_pickle, rezip, torch_zip_bytes

from pytest_kpmodel.cli import main


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("cli")
    (d / "good.pt").write_bytes(torch_zip_bytes())
    evil = evil_pickle(str(d / "marker"))
    (d / "evil.pt").write_bytes(rezip([("archive/data.pkl", evil), ("archive/version", b"3\n")]))
    (d / "sub").mkdir()
    (d / "sub" / "README.md").write_text("# not weights\n")
    (d / "sub" / "again.bin").write_bytes(torch_zip_bytes())
    return {"dir": d, "good": d / "good.pt", "evil": d / "evil.pt"}


def test_clean_file_exit_0(files, capsys, no_unpickle) -> None:
    assert main(["scan", str(files["good"])]) == 0
    out = capsys.readouterr().out
    assert "CLEAN (torch-zip, 3 tensors)" in out and "1/1 files clean" in out


def test_unsafe_file_exit_1_one_line_per_cause(files, capsys, no_unpickle) -> None:
    assert main(["scan", str(files["evil"])]) == 1
    out = capsys.readouterr().out
    assert "UNSAFE" in out
    (line,) = [ln for ln in out.splitlines() if "builtins.open" in ln]
    assert str(files["evil"]) in line and "/data.pkl @" in line  # file, member, byte offset
    assert "opcode=GLOBAL" in line and "name=builtins.open" in line
    assert "not on the allow-list" in line  # why
    assert not (files["dir"] / "marker").exists()


def test_folder_scan(files, capsys, no_unpickle) -> None:
    assert main(["scan", str(files["dir"])]) == 1
    out = capsys.readouterr().out
    assert "README.md: CLEAN (inert text)" in out and "again.bin: CLEAN" in out
    assert "refused: 1 unsafe" in out
    assert main(["scan", "--no-recursive", str(files["good"]), str(files["dir"] / "sub")]) == 0
    # without recursion a subfolder is not verified: that fails too
    assert main(["scan", "--no-recursive", str(files["dir"])]) == 1
    assert "subfolder not scanned" in capsys.readouterr().out


def test_json_output(files, capsys, no_unpickle) -> None:
    assert main(["scan", "--json", str(files["good"]), str(files["evil"])]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["verdict"] == "unsafe"
    assert set(doc["labels"]) == {"unsafe", "unverifiable", "unsupported"}
    good, evil = doc["files"]
    assert good["verdict"] == "clean" and evil["verdict"] == "unsafe"
    f = next(f for f in evil["findings"] if f["details"]["code"] == "disallowed-global")
    assert {"file", "member", "offset", "opcode", "name", "verdict"} <= set(f["details"])


def test_allow_global_is_reported(files, capsys, no_unpickle) -> None:
    assert main(["scan", "--json", "--allow-global", "builtins:open", str(files["evil"])]) == 0
    doc = json.loads(capsys.readouterr().out)
    infos = [f for f in doc["files"][0]["findings"] if f["severity"] == "info"]
    assert any("builtins.open" in f["message"] for f in infos)


@pytest.mark.parametrize(
    "argv",
    [
        ["scan"],
        ["scan", "/nonexistent/x.pt"],
        ["scan", "--max-ops", "0", "."],
        ["scan", "--allow-global", "nodot", "."],
        ["scan", "--bogus"],
    ],
)
def test_usage_errors_exit_2(argv: list[str], capsys) -> None:
    assert main(argv) == 2


def test_show_allowlist(capsys) -> None:
    assert main(["scan", "--show-allowlist"]) == 0
    out = capsys.readouterr().out
    assert "argparse.Namespace" in out and "torchvision" in out


def test_json_labels_each_file(tmp_path: Path, capsys, no_unpickle) -> None:
    (tmp_path / "w.pt").write_bytes(torch_zip_bytes())
    (tmp_path / "blob.7z").write_bytes(b"7z\xbc\xaf\x27\x1c" + bytes(range(256)))
    (tmp_path / "list.pkl").write_bytes(pickle.dumps([1, 2, 3], protocol=4))
    assert main(["scan", "--json", str(tmp_path)]) == 1
    doc = json.loads(capsys.readouterr().out)
    verdicts = {Path(f["path"]).name: f["verdict"] for f in doc["files"]}
    assert verdicts == {"w.pt": "clean", "blob.7z": "unverifiable", "list.pkl": "unsupported"}
    assert doc["verdict"] == "unverifiable"  # the worst of the files
    for f in doc["files"]:
        labels = {x["details"]["verdict"] for x in f["findings"] if x["severity"] == "fail"}
        assert labels <= set(doc["labels"])
        assert (f["verdict"] in labels) if labels else f["verdict"] == "clean"


def _many_files(folder: Path, n: int) -> None:
    folder.mkdir()
    for i in range(n):
        (folder / f"{i:04d}.bin").write_bytes(b"\x01\x02 not a model " * 4)


@pytest.mark.parametrize("how", ["head", "closed"])
def test_broken_pipe_exits_quietly(tmp_path: Path, how: str) -> None:
    """`kpmodel scan X | head -3`: no BrokenPipeError traceback, no error message."""
    _many_files(tmp_path / "d", 400)
    exe = str(Path(sys.executable).with_name("kpmodel"))
    if how == "head":
        r = subprocess.run(
            ["bash", "-c", f"'{exe}' scan '{tmp_path / 'd'}' | head -3"],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert len(r.stdout.splitlines()) == 3
        err = r.stderr
    else:
        p = subprocess.Popen(
            [exe, "scan", str(tmp_path / "d")], stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        assert p.stdout is not None and p.stderr is not None
        p.stdout.close()  # the reader goes away before the first line is written
        err = p.stderr.read().decode()
        p.wait(timeout=300)
        assert p.returncode == 1  # the scan's own status: those files are unverifiable
    assert err == "", err
