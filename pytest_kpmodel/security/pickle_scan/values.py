"""The symbolic values the machine pushes instead of real objects, and what can be asked of
them (their nesting depth, a type name for messages, whether CPython knows their type).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..allowlist import Allowed


class Sym:
    __slots__ = ()
    depth = 0


class Global(Sym):
    __slots__ = ("module", "name", "entry", "offset")

    def __init__(self, module: str, name: str, entry: Allowed | None, offset: int) -> None:
        self.module, self.name, self.entry, self.offset = module, name, entry, offset

    @property
    def full(self) -> str:
        return f"{self.module}.{self.name}"


class Opaque(Sym):
    """The result of something that was already reported (a disallowed import or call)."""

    __slots__ = ()


OPAQUE = Opaque()


class Blob(Sym):
    """A large bytes/str literal that is not kept in memory (or any bytearray)."""

    __slots__ = ("size", "mutable")

    def __init__(self, size: int, mutable: bool = False) -> None:
        self.size, self.mutable = size, mutable


class Container(Sym):
    __slots__ = ("items", "depth", "kind")

    def __init__(self, kind: str, items: list[Any], depth: int) -> None:
        self.kind, self.items, self.depth = kind, items, depth


class Obj(Sym):
    """The result of an allowed call: a tensor, a parameter, a Namespace, an extra global."""

    __slots__ = ("kind", "info", "depth", "built")

    def __init__(self, kind: str, info: Any = None) -> None:
        self.kind, self.info, self.depth, self.built = kind, info, 1, False


@dataclass
class StorageRef(Sym):
    """A storage named by a persistent id (``view`` = legacy (offset, size) in elements)."""

    key: str
    type_name: str  # "torch.FloatStorage"
    itemsize: int
    numel: int  # elements of type_name (bytes for UntypedStorage)
    location: str
    offset: int  # where the persistent id is, in the member/file
    view: tuple[int, int] | None = None
    depth: int = 0

    @property
    def nbytes(self) -> int:
        return self.numel * self.itemsize

    @property
    def elements(self) -> int:
        """Elements visible through this reference (the view's size for legacy views)."""
        return self.view[1] if self.view is not None else self.numel


def depth_of(v: Any) -> int:
    return v.depth if isinstance(v, Sym) else (0 if not isinstance(v, tuple) else 1)


def typename(v: Any) -> str:
    if isinstance(v, Container):
        return v.kind
    if isinstance(v, Obj):
        return v.kind
    if isinstance(v, Global):
        return f"global {v.full}"
    if isinstance(v, StorageRef):
        return "storage"
    return type(v).__name__


# Built-in values (CPython knows their type): a missing method raises instead of running
# anything, and their methods run no code of the file.
_PLAIN = (bytes, str, int, float, bool, type(None), Blob, Container)


def is_plain(t: Any) -> bool:
    return isinstance(t, _PLAIN)


def is_bytearray(t: Any) -> bool:
    return isinstance(t, Blob) and t.mutable


def is_int(v: Any) -> bool:
    return type(v) is int
