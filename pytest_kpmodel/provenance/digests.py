"""File digests, streamed so that large checkpoints never sit in memory twice."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from ..atomic import replacing

CHUNK = 1 << 22


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def cached_sha256(path: Path, cache: dict[Path, str] | None) -> str:
    """``sha256_file(path)``, computed once per ``cache`` (no cache: computed every time)."""
    if cache is None:
        return sha256_file(path)
    if path not in cache:
        cache[path] = sha256_file(path)
    return cache[path]


def _identity(path: Path) -> dict[str, int | str]:
    """What changes whenever the file's bytes may have: git's index keys its cached hashes on
    the same fields. ``ctime`` cannot be set back from user space, so rewriting the file and
    restoring its mtime (``touch -d``) still changes it."""
    st = path.stat()
    return {"path": str(path.resolve()), "dev": st.st_dev, "ino": st.st_ino,
            "size": st.st_size, "mtime_ns": st.st_mtime_ns, "ctime_ns": st.st_ctime_ns}  # fmt: skip


def remembered_sha256(path: Path, memo_dir: Path | None) -> str:
    """``sha256_file(path)``, remembered across runs in ``memo_dir`` while the file's identity
    (device, inode, size, mtime, ctime) is unchanged: a re-run whose predictions are cached
    need not read a 200 MB checkpoint to find its cache key. ``None``: hashed every time. The
    pinned-digest gate (``provenance.sha256``) always hashes the file itself."""
    if memo_dir is None:
        return sha256_file(path)
    ident = _identity(path)
    memo = memo_dir / f"{hashlib.sha256(str(ident['path']).encode()).hexdigest()[:32]}.json"
    try:
        stored = json.loads(memo.read_text(encoding="utf-8"))
        if stored.get("identity") == ident and len(stored.get("sha256", "")) == 64:
            return str(stored["sha256"])
    except (OSError, ValueError, AttributeError):
        pass  # absent or unreadable: hashed below and written again
    digest = sha256_file(path)
    if _identity(path) == ident:  # not remembered when the file changed while it was read
        try:
            with replacing(memo, text=True) as f:
                json.dump({"identity": ident, "sha256": digest}, f)
        except OSError:
            pass  # a read-only cache only costs the next run a hash
    return digest
