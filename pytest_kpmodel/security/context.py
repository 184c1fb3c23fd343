"""The state of one file's scan, shared by the format scanners: the mapped bytes, the findings
collector, the limits and allow-list, and what the scan has counted so far.

``nested`` scans an archive inside the file with the same dispatcher as the file itself (given
by :mod:`.scan`, which builds the context), one level deeper, up to ``max_nesting``.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable
from typing import Any

from .allowlist import Allowlist
from .report import UNVERIFIABLE, Collector, ScanLimits

# (context, start, end, member) -> the kind found there
Dispatch = Callable[["ScanContext", int, int, "str | None"], str]


class _BufReader(io.RawIOBase):
    """A read-only file object over bytes or an mmap (for tarfile)."""

    def __init__(self, buf: Any, size: int) -> None:
        self.buf, self.size, self.pos = buf, size, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        end = self.size if n is None or n < 0 else min(self.size, self.pos + n)
        data = self.buf[self.pos : end]
        self.pos = end
        return data

    def readinto(self, b: Any) -> int:
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)

    def seek(self, off: int, whence: int = 0) -> int:
        self.pos = {0: off, 1: self.pos + off, 2: self.size + off}[whence]
        return self.pos

    def tell(self) -> int:
        return self.pos


class ScanContext:
    def __init__(
        self,
        buf: Any,
        size: int,
        col: Collector,
        limits: ScanLimits,
        allowlist: Allowlist,
        allow_code: bool,
        folder: str | None,
        explicit: bool,
        dispatch: Dispatch,
    ) -> None:
        self.buf, self.size, self.col, self.limits = buf, size, col, limits
        self.allowlist, self.allow_code, self.folder = allowlist, allow_code, folder
        self.explicit = explicit
        self.dispatch = dispatch
        self.globals: dict[str, None] = {}
        self.tensors = 0
        self.storages = 0
        self.depth = 0
        self.name = ""  # the file's name (names may flag code, never clear a file)
        self.covered: list[str] = []  # ONNX external data files whose tensors were checked

    def add_globals(self, names: Iterable[str]) -> None:
        for n in names:
            self.globals[n] = None

    def fileobj(self) -> Any:
        return _BufReader(self.buf, self.size)

    def nested(self, start: int, end: int, label: str) -> str:
        if self.depth >= self.limits.max_nesting:
            self.col.add(
                "security.limits",
                "limit-max-nesting",
                f"archives nested deeper than max_nesting={self.limits.max_nesting}",
                verdict=UNVERIFIABLE,
                member=label,
            )
            return "unknown"
        self.depth += 1
        try:
            return self.dispatch(self, start, end, label)
        finally:
            self.depth -= 1
