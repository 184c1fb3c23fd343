"""Paths of a model's files: symlinks on the way, POSIX paths relative to the card, safe writes."""

from __future__ import annotations

import os
from pathlib import Path

from ..atomic import write_bytes


def relative_posix(path: Path, folder: Path) -> str:
    """``path`` relative to ``folder``, with forward slashes (``..`` where it lies outside)."""
    return Path(os.path.relpath(path, folder)).as_posix()


def atomic_write(path: Path, data: bytes, *, mode: int) -> None:
    """Never a half-written card, key or signature: ``atomic.write_bytes``, synced to disk."""
    write_bytes(path, data, mode=mode, fsync=True)


def symlinks_on_path(path: Path, folder: Path) -> list[Path]:
    """Every component of ``path`` below ``folder`` that is a symlink (``lstat``, not followed)."""
    try:
        rel = Path(os.path.relpath(path, folder))
    except ValueError:
        return []
    found = []
    current = folder
    for part in rel.parts:
        current = current / part
        if part in (".", ".."):
            continue
        try:
            if os.path.islink(current):
                found.append(current)
        except OSError:
            break
    return found
