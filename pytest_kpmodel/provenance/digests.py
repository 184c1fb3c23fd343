"""File digests, streamed so that large checkpoints never sit in memory twice."""

from __future__ import annotations

import hashlib
from pathlib import Path

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
