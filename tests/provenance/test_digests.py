"""The weights' digest is remembered across runs while the file is unchanged, and hashed again
whenever it may have changed."""

from __future__ import annotations

import hashlib
import os

import pytest

from pytest_kpmodel.provenance import digests


def _no_hashing(path):
    raise AssertionError(f"{path} was hashed")


def test_a_remembered_digest_is_not_read_again(tmp_path, monkeypatch):
    weights = tmp_path / "model.pt"
    weights.write_bytes(b"weights" * 1000)
    memo = tmp_path / "cache" / "digests"
    expected = hashlib.sha256(weights.read_bytes()).hexdigest()
    assert digests.remembered_sha256(weights, memo) == expected
    assert len(list(memo.iterdir())) == 1
    monkeypatch.setattr(digests, "sha256_file", _no_hashing)
    assert digests.remembered_sha256(weights, memo) == expected


def test_rewritten_bytes_are_hashed_again_even_with_the_mtime_restored(tmp_path):
    weights = tmp_path / "model.pt"
    weights.write_bytes(b"a" * 4096)
    memo = tmp_path / "digests"
    before = digests.remembered_sha256(weights, memo)
    st = weights.stat()
    weights.write_bytes(b"b" * 4096)  # same size
    os.utime(weights, ns=(st.st_atime_ns, st.st_mtime_ns))  # `touch -d` back
    after = digests.remembered_sha256(weights, memo)
    assert after != before
    assert after == hashlib.sha256(b"b" * 4096).hexdigest()


@pytest.mark.parametrize("stored", ["{not json", '{"identity": 1}', '["x"]', ""])
def test_an_unreadable_memo_is_hashed_again(tmp_path, stored):
    weights = tmp_path / "model.pt"
    weights.write_bytes(b"w" * 100)
    memo = tmp_path / "digests"
    digests.remembered_sha256(weights, memo)
    (entry,) = memo.iterdir()
    entry.write_text(stored)
    assert digests.remembered_sha256(weights, memo) == hashlib.sha256(b"w" * 100).hexdigest()


def test_a_forged_memo_for_another_file_state_is_not_trusted(tmp_path):
    weights = tmp_path / "model.pt"
    weights.write_bytes(b"w" * 100)
    memo = tmp_path / "digests"
    digests.remembered_sha256(weights, memo)
    (entry,) = memo.iterdir()
    entry.write_text(entry.read_text().replace('"size": 100', '"size": 99'))
    assert digests.remembered_sha256(weights, memo) == hashlib.sha256(b"w" * 100).hexdigest()


def test_no_memo_dir_hashes_every_time_and_an_unwritable_one_is_no_error(tmp_path, monkeypatch):
    weights = tmp_path / "model.pt"
    weights.write_bytes(b"w")
    calls = []
    real = digests.sha256_file
    monkeypatch.setattr(digests, "sha256_file", lambda p: calls.append(p) or real(p))
    digests.remembered_sha256(weights, None)
    digests.remembered_sha256(weights, None)
    assert len(calls) == 2
    blocker = tmp_path / "file-not-dir"
    blocker.write_text("")
    assert digests.remembered_sha256(weights, blocker / "digests") == real(weights)
