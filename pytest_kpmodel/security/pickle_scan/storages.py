"""Persistent ids: the ``('storage', type, key, location, numel[, view])`` records torch.save
writes, checked and collected one per key for the container to compare with its data.
"""

from __future__ import annotations

import re
from typing import Any

from ..report import Collector
from .errors import BadArgs
from .values import Container, Global, StorageRef, is_int, typename

_LOCATION = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(:[0-9]+)?$")


class StorageTable:
    """Collects the storages named by persistent ids (one per key) for the container check."""

    def __init__(self, col: Collector, member: str | None, legacy: bool) -> None:
        self.col, self.member, self.legacy = col, member, legacy
        self.roots: dict[str, StorageRef] = {}
        self.views: dict[str, tuple[str, int, int]] = {}

    def __call__(self, pid: Any, offset: int) -> Any:
        if not (isinstance(pid, Container) and pid.kind == "tuple"):
            raise BadArgs(f"is a {typename(pid)}, not a ('storage', ...) tuple")
        a = pid.items
        want = 6 if self.legacy else 5
        if a and a[0] == "module" and self.legacy:
            raise BadArgs("pickles a whole nn.Module class with its source (torch.save(model))")
        if len(a) != want or a[0] != "storage":
            raise BadArgs(
                f"has {len(a)} items; torch.save writes ('storage', type, key, "
                f"location, numel{', view' if self.legacy else ''})"
            )
        stype, key, location, numel = a[1], a[2], a[3], a[4]
        if not (
            isinstance(stype, Global) and stype.entry is not None and stype.entry.role == "storage"
        ):
            raise BadArgs(f"storage type is a {typename(stype)}")
        if type(key) is not str or not key.isdigit() or len(key) > 40:
            raise BadArgs(f"storage key {key!r} is not a decimal number")
        if type(location) is not str or not _LOCATION.match(location):
            raise BadArgs(f"location {location!r} is not a device name")
        if not is_int(numel) or numel < 0:
            raise BadArgs(f"numel {numel!r} is not a non-negative int")
        ref = StorageRef(key, stype.full, stype.entry.itemsize, numel, location, offset)
        prev = self.roots.get(key)
        if prev is None:
            self.roots[key] = ref
        elif (prev.type_name, prev.numel) != (ref.type_name, ref.numel):
            raise BadArgs(
                f"names storage {key!r} as {ref.type_name}[{numel}] after "
                f"{prev.type_name}[{prev.numel}]"
            )
        if self.legacy and a[5] is not None:
            view = a[5]
            if not (isinstance(view, Container) and view.kind == "tuple" and len(view.items) == 3):
                raise BadArgs("view metadata must be (view_key, offset, size)")
            vkey, voff, vsize = view.items
            if type(vkey) is not str or not is_int(voff) or not is_int(vsize):
                raise BadArgs("view metadata must be (str, int, int)")
            if voff < 0 or vsize < 0 or voff + vsize > numel:
                raise BadArgs(
                    f"view {vkey!r} [{voff}:{voff + vsize}] exceeds storage {key!r} "
                    f"of {numel} elements"
                )
            return StorageRef(
                key, ref.type_name, ref.itemsize, numel, location, offset, view=(voff, vsize)
            )
        return ref
