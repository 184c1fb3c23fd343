"""Paths of a model's files: symlinks on the way, POSIX paths relative to the card, safe writes."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def relative_posix(path: Path, folder: Path) -> str:
    """``path`` relative to ``folder``, with forward slashes (``..`` where it lies outside)."""
    return Path(os.path.relpath(path, folder)).as_posix()


def atomic_write(path: Path, data: bytes, *, mode: int) -> None:
    """Write via a temporary file in the same folder and rename: never a half-written file."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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
