"""The legacy non-zip torch format (``_use_new_zipfile_serialization=False``), scanned whole:
the magic number, protocol version and sys-info pickles (plain values only), the payload
pickle, the storage-key list (must equal the keys the payload references, sorted), then every
storage's ``int64 numel`` + bytes, and nothing after.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING, Any

from ..pickle_scan import Container, PickleRules, StorageTable, make_rules, scan_pickle
from ..report import UNVERIFIABLE
from .pickles import scan_stacked, trailing_data

if TYPE_CHECKING:
    from ..context import ScanContext

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL_VERSION = 1001
_LEGACY_PREFIXES = tuple(
    bytes([0x80, p, 0x8A, 0x0A]) + LEGACY_MAGIC.to_bytes(10, "little") + b"." for p in (2, 3)
)
KIND = "torch-legacy"


def is_legacy_torch(buf: Any) -> bool:
    head = buf[:15]
    return head in _LEGACY_PREFIXES


def scan_legacy(ctx: ScanContext, start: int, end: int, member: str | None = None) -> str:
    col, buf, lim = ctx.col, ctx.buf, ctx.limits
    header = make_rules("header", ctx.allowlist)
    pos = _header(ctx, header, start, end, member)
    if pos is None:
        return KIND
    table = StorageTable(col, member, legacy=True)
    rules = make_rules("torch", ctx.allowlist, table)
    res = scan_pickle(buf, pos, end, col, rules, lim, member=member, base=start)
    ctx.add_globals(res.globals)
    ctx.tensors += res.tensors
    if not res.complete:
        return KIND
    pos = res.end
    res = scan_pickle(buf, pos, end, col, header, lim, member=member, base=start)
    ctx.add_globals(res.globals)
    if not res.complete:
        return KIND
    pos = res.end
    keys = res.value
    if not (
        isinstance(keys, Container)
        and keys.kind == "list"
        and all(type(k) is str for k in keys.items)
    ):
        col.add(
            "security.container",
            "legacy-keys",
            "legacy storage key list is not a list of str",
            verdict=UNVERIFIABLE,
            member=member,
        )
        return KIND
    ctx.storages += len(table.roots)
    if keys.items != sorted(table.roots):
        col.add(
            "security.tensor",
            "legacy-keys",
            f"legacy storage key list ({len(keys.items)} keys) does not equal the sorted "
            f"storages the payload references ({len(table.roots)})",
            member=member,
            offset=pos - start,
        )
        return KIND
    pos = _storages(ctx, keys.items, table, pos, end, member, start)
    if pos is not None and pos != end:
        trailing_data(
            ctx,
            "security.container",
            f"{end - pos} bytes after the last storage (appended data or a stacked pickle)",
            pos,
            end,
            member,
            start,
        )
    return KIND


def _header(
    ctx: ScanContext, header: PickleRules, start: int, end: int, member: str | None
) -> int | None:
    """The magic number, protocol version and sys-info pickles: where the payload starts
    (None: the header is not torch's, or does not parse)."""
    col = ctx.col
    pos = start
    values = []
    for _what in ("magic number", "protocol version", "sys info"):
        res = scan_pickle(ctx.buf, pos, end, col, header, ctx.limits, member=member, base=start)
        ctx.add_globals(res.globals)
        if not res.complete:
            return None
        if res.file_end > res.end:  # torch reads on from the file: after the frame, not STOP
            scan_stacked(ctx, res.file_end, end, member, start)
        values.append(res.value)
        pos = res.end
    magic, proto, sysinfo = values
    if magic != LEGACY_MAGIC or proto != LEGACY_PROTOCOL_VERSION:
        col.add(
            "security.container",
            "legacy-header",
            f"legacy header has magic {magic!r} / protocol {proto!r}",
            verdict=UNVERIFIABLE,
            member=member,
        )
        return None
    if not _plain_dict(sysinfo) or ("little_endian", True) not in _pairs(sysinfo):
        col.add(
            "security.container",
            "legacy-sysinfo",
            "legacy sys_info is not a little-endian {protocol_version, little_endian, "
            "type_sizes} dict",
            verdict=UNVERIFIABLE,
            member=member,
        )
    return pos


def _storages(
    ctx: ScanContext,
    keys: list[str],
    table: StorageTable,
    pos: int,
    end: int,
    member: str | None,
    start: int,
) -> int | None:
    """Each storage's record (``int64 numel`` + bytes) in key order: where the last one ends
    (None: a record is missing, short or of the wrong size)."""
    col, buf = ctx.col, ctx.buf
    for key in keys:
        ref = table.roots[key]
        if pos + 8 > end:
            col.add(
                "security.tensor",
                "legacy-truncated",
                f"storage {key!r} data is missing (file truncated)",
                verdict=UNVERIFIABLE,
                member=member,
                offset=pos - start,
            )
            return None
        numel = struct.unpack_from("<q", buf, pos)[0]
        if numel != ref.numel:
            col.add(
                "security.tensor",
                "legacy-size",
                f"storage {key!r} record holds {numel} elements, the payload says {ref.numel}",
                member=member,
                offset=pos - start,
                name=key,
            )
            return None
        pos += 8 + ref.nbytes
        if pos > end:
            col.add(
                "security.tensor",
                "legacy-truncated",
                f"storage {key!r} data runs past the end of the file",
                verdict=UNVERIFIABLE,
                member=member,
                offset=pos - start,
            )
            return None
    return pos


def _plain_dict(v: Any) -> bool:
    return isinstance(v, Container) and v.kind == "dict"


def _pairs(v: Container) -> list[tuple[Any, Any]]:
    return list(zip(v.items[::2], v.items[1::2], strict=True))
