"""pytest_kpmodel.atomic: a file is replaced whole or not at all (reports, cards, keys)."""

from __future__ import annotations

import pytest

from pytest_kpmodel.atomic import replacing, write_bytes, write_text


def test_replaces_the_file_with_the_mode_asked(tmp_path):
    path = tmp_path / "sub" / "kp-report.json"
    assert write_text(path, "one\n") == path
    assert path.read_text() == "one\n" and path.stat().st_mode & 0o777 == 0o644
    write_bytes(path, b"two", mode=0o600, fsync=True)
    assert path.read_bytes() == b"two" and path.stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in path.parent.iterdir()) == ["kp-report.json"]


def test_a_failed_write_keeps_the_old_file_and_leaves_nothing(tmp_path):
    path = tmp_path / "kpmodel.toml"
    path.write_text("old")
    with pytest.raises(RuntimeError, match="disk full"), replacing(path, text=True) as f:
        f.write("half of the new")
        raise RuntimeError("disk full")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["kpmodel.toml"]
