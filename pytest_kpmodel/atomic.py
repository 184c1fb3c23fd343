"""Writing a file so that no reader ever sees half of it (a CI step reading the report, a second
run reading a card or key): a temporary file beside it, renamed over it (``os.replace``) once
complete, removed when the write fails. Imports nothing of the project; anyone may use it.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

# Files meant to be read by others (reports, cards, signatures, public keys): mkstemp's 0600
# would hide them from a web server or another user.
READABLE = 0o644


@contextmanager
def replacing(path: Path, *, mode: int = READABLE, text: bool = False,
              fsync: bool = False) -> Iterator[IO[Any]]:  # fmt: skip
    """A file object whose content replaces ``path`` when the block ends without an error.

    ``mode``: the file's permission bits; ``fsync``: flushed to the disk before the rename (keys
    and signatures: a crash must not leave an empty file under the real name).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w" if text else "wb", encoding="utf-8" if text else None) as f:
            yield f
            if fsync:
                f.flush()
                os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text(path: Path, text: str, *, mode: int = READABLE) -> Path:
    with replacing(path, mode=mode, text=True) as f:
        f.write(text)
    return Path(path)


def write_bytes(path: Path, data: bytes, *, mode: int = READABLE, fsync: bool = False) -> Path:
    with replacing(path, mode=mode, fsync=fsync) as f:
        f.write(data)
    return Path(path)
