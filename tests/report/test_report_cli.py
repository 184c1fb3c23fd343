"""``kpmodel report DIR``: re-renders index.html from kp-report.json, nothing rerun."""

from __future__ import annotations

import json
import re
import shutil

import pytest

from pytest_kpmodel.cli import main


def test_rerenders_from_the_json_and_the_files_beside_it(rich_dir, tmp_path, capsys):
    # Only what --kp-report leaves behind: the JSON and the images it references.
    copy = tmp_path / "copied-report"
    copy.mkdir()
    shutil.copy(rich_dir / "kp-report.json", copy)
    shutil.copytree(rich_dir / "images", copy / "images")
    assert main(["report", str(copy)]) == 0
    page = (copy / "index.html").read_text()
    assert f"wrote {copy / 'index.html'}" in capsys.readouterr().out
    report = json.loads((copy / "kp-report.json").read_text())
    images = [a for a in report["artifacts"] if a.get("path")]
    assert images and 'class="artifact-note"' not in page
    assert len(re.findall(r'<img src="data:image/', page)) >= len(images)
    assert 'class="render-error"' not in page


def test_output_elsewhere(rich_dir, tmp_path):
    out = tmp_path / "sub" / "page.html"
    assert main(["report", str(rich_dir), "-o", str(out)]) == 0
    assert out.read_text().startswith("<!DOCTYPE html>")


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "kp-report.json: not found"),
        ("{not json", "invalid JSON at line 1 column 2"),
        ("[1, 2]", "expected a JSON object, got list"),
        (b"\xff\xfe", "not UTF-8 text"),
    ],
)
def test_usage_errors_exit_2(tmp_path, capsys, content, message):
    if isinstance(content, str):
        (tmp_path / "kp-report.json").write_text(content)
    elif isinstance(content, bytes):
        (tmp_path / "kp-report.json").write_bytes(content)
    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("kpmodel: error: ") and message in err
    assert not (tmp_path / "index.html").exists()


def test_missing_folder_and_missing_argument(tmp_path, capsys):
    assert main(["report", str(tmp_path / "nope")]) == 2
    assert "no such folder" in capsys.readouterr().err
    assert main(["report"]) == 2  # argparse usage error


def test_minimal_json(tmp_path):
    (tmp_path / "kp-report.json").write_text(json.dumps({"schema": 1, "model": {"name": "m"}}))
    assert main(["report", str(tmp_path)]) == 0
    assert "<h1>m</h1>" in (tmp_path / "index.html").read_text()
