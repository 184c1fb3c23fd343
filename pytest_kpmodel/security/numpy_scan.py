"""numpy ``.npy`` and ``.npz`` files, read as ``np.load`` reads them, never loaded.

``.npy``: the magic ``\\x93NUMPY``, a version (1.0, 2.0, 3.0), a header length and a header that
is a Python literal ``{'descr': ..., 'fortran_order': ..., 'shape': (...)}`` (parsed with
``ast.literal_eval``, which evaluates no code, within numpy's own 10 000-byte limit). For a dtype
without objects the rest of the file is ``prod(shape) * itemsize`` raw bytes: checked in size,
inert. A dtype with objects (``|O``, or a structured dtype with an object field) means the rest
is a pickle that ``np.load(allow_pickle=True)`` unpickles: it is scanned like any plain pickle,
so what it would import is named.

``.npz``: a zip archive whose members are all ``.npy`` (``np.savez``, stored; or
``np.savez_compressed``, deflated - inflated here, at most 64 MiB per member); each member is
checked as above.
"""

from __future__ import annotations

import ast
import math
import struct
import zlib
from typing import TYPE_CHECKING, Any

from .pickle_scan import make_rules, scan_pickle
from .report import Collector, ScanLimits

if TYPE_CHECKING:
    from .zip_scan import Member

MAGIC = b"\x93NUMPY"
MAX_HEADER = 10_000  # numpy's default max_header_size
MAX_INFLATE = 64 << 20


def looks_like_npy(head: bytes) -> bool:
    return head.startswith(MAGIC)


def _dtype(descr: Any) -> Any:
    import numpy as np
    from numpy.lib import format as npformat

    if not isinstance(descr, (str, list)):
        raise ValueError(f"descr is a {type(descr).__name__}")
    return npformat.descr_to_dtype(descr) if isinstance(descr, list) else np.dtype(descr)


def scan_npy(
    buf: Any,
    start: int,
    end: int,
    col: Collector,
    limits: ScanLimits,
    allowlist: Any,
    member: str | None,
    globals_: list[str] | None = None,
) -> tuple[int, int]:
    """Check one ``.npy`` at ``buf[start:end]``: (arrays, end of the recognised data).
    ``globals_`` receives what an object array's pickle imports."""

    def add(code: str, why: str, **kw: Any) -> None:
        col.add("security.numpy", code, why, member=member, **kw)

    n = end - start
    if n < 10:
        add("npy-header", "truncated .npy header")
        return 0, end
    major = buf[start + 6]
    if major == 1:
        (hlen,), hstart = struct.unpack_from("<H", buf, start + 8), start + 10
    elif major in (2, 3) and n >= 12:
        (hlen,), hstart = struct.unpack_from("<I", buf, start + 8), start + 12
    else:
        add("npy-header", f".npy format version {major}.{buf[start + 7]} is unknown")
        return 0, end
    if hlen > MAX_HEADER or hstart + hlen > end:
        add("npy-header", f".npy header of {hlen} bytes is too long or truncated", offset=8)
        return 0, end
    raw = bytes(buf[hstart : hstart + hlen])
    try:
        header = ast.literal_eval(raw.decode("utf-8" if major == 3 else "latin1"))
        if not isinstance(header, dict) or set(header) != {"descr", "fortran_order", "shape"}:
            raise ValueError("keys must be descr, fortran_order and shape")
        shape = header["shape"]
        if not (
            isinstance(shape, tuple) and all(type(d) is int and d >= 0 for d in shape)
        ) or not isinstance(header["fortran_order"], bool):
            raise ValueError("shape must be a tuple of non-negative ints, fortran_order a bool")
        dtype = _dtype(header["descr"])
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError) as e:
        add("npy-header", f".npy header is not what np.load reads: {str(e)[:160]}", offset=hstart)
        return 0, end
    data = hstart + hlen
    if dtype.hasobject:
        add(
            "npy-object",
            f"array of dtype {dtype} holds Python objects: np.load(allow_pickle=True) unpickles "
            "the rest of the file (scanned as a pickle)",
            offset=data - start,
        )
        rules = make_rules("plain", allowlist, None)
        rules.persistent_load = None
        res = scan_pickle(buf, data, end, col, rules, limits, member=member, base=start)
        if globals_ is not None:
            globals_ += res.globals
        return 1, res.end if res.complete else end
    size = math.prod(shape) * dtype.itemsize
    if data + size > end:
        add(
            "npy-size",
            f"array {shape} of {dtype} needs {size} bytes, the file holds {end - data}",
            offset=data - start,
        )
        return 0, end
    return 1, data + size


def inflate_member(buf: Any, m: Member) -> bytes | None:
    """A deflated zip member's bytes (None when it does not inflate to its size, or is big)."""
    if m.size > MAX_INFLATE:
        return None
    d = zlib.decompressobj(-15)
    try:
        out = d.decompress(memoryview(buf)[m.data_offset : m.data_offset + m.csize], m.size + 1)
    except zlib.error:
        return None
    return out if len(out) == m.size and d.eof else None


def scan_npz(ctx: Any, members: list[Member], member: str | None) -> int:
    """Each member of an ``.npz`` archive; returns the number of arrays."""
    col = ctx.col
    arrays = 0
    for m in members:
        label = f"{member}!{m.name}" if member else m.name
        if m.method == 0:
            b, s, e = ctx.buf, m.data_offset, m.data_offset + m.size
        else:
            data = inflate_member(ctx.buf, m) if m.method == 8 else None
            if data is None:
                col.add(
                    "security.numpy",
                    "inflate",
                    f"member {m.name!r} cannot be inflated (method {m.method}) within "
                    f"{MAX_INFLATE >> 20} MiB",
                    member=member,
                    name=m.name,
                )
                continue
            b, s, e = data, 0, len(data)
        if not looks_like_npy(bytes(b[s : s + 6])):
            col.add(
                "security.numpy",
                "npy-header",
                f"member {m.name!r} of an .npz archive is not an .npy array",
                member=member,
                name=m.name,
            )
            continue
        names: list[str] = []
        count, stop = scan_npy(b, s, e, col, ctx.limits, ctx.allowlist, label, names)
        ctx.add_globals(names)
        arrays += count
        if stop < e:
            col.add(
                "security.numpy",
                "trailing-data",
                f"{e - stop} bytes after the array data (np.load ignores them)",
                member=label,
                offset=stop - s,
            )
    return arrays
