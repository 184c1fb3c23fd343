"""safetensors validation, without the safetensors library (it would be the thing under test).

Layout: ``u64 little-endian N``, then an N-byte JSON header, then the byte buffer. Checked:

* ``N`` within ``ScanLimits.max_header`` (100 MB, the library's own limit) and the file;
* the header is UTF-8 JSON: one object, no duplicate keys, no NaN/Infinity, nothing but
  trailing spaces after it;
* ``__metadata__``, if present, maps str to str only;
* every tensor entry has exactly ``dtype``/``shape``/``data_offsets``; the dtype is known; the
  shape is non-negative ints; ``end - begin`` equals ``numel * bits / 8`` exactly;
* the data offsets, sorted, cover the buffer contiguously from 0 to its end: no overlap, no
  gap, nothing out of bounds, no bytes after the last tensor.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable
from functools import partial
from typing import Any

from .report import UNVERIFIABLE, Collector, ScanLimits

# dtype -> bits per element (safetensors 0.8 list)
DTYPE_BITS: dict[str, int] = {
    "BOOL": 8, "F4": 4, "F6_E2M3": 6, "F6_E3M2": 6, "U8": 8, "I8": 8, "F8_E5M2": 8,
    "F8_E4M3": 8, "F8_E8M0": 8, "F8_E4M3FNUZ": 8, "F8_E5M2FNUZ": 8, "I16": 16, "U16": 16,
    "F16": 16, "BF16": 16, "I32": 32, "U32": 32, "F32": 32, "C64": 64, "F64": 64, "I64": 64,
    "U64": 64,
}  # fmt: skip

# col.add with the check and member bound: (code, why, *, verdict=, name=, offset=)
_Add = Callable[..., None]


def looks_like_safetensors(buf: Any, size: int) -> bool:
    return size >= 10 and buf[8:9] == b"{"


class _Dup(ValueError):
    pass


def _no_dupes(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise _Dup(k)
        out[k] = v
    return out


def _no_constants(name: str) -> Any:
    raise ValueError(f"non-standard JSON constant {name}")


def _is_uint(v: Any) -> bool:
    return type(v) is int and v >= 0


def scan_safetensors(
    buf: Any, size: int, col: Collector, limits: ScanLimits, member: str | None = None
) -> int:
    """Validate a safetensors file; returns the number of tensors."""
    add = partial(col.add, "security.safetensors", member=member)
    found = _read_header(buf, size, col, limits, member, add)
    if found is None:
        return 0
    header, n = found
    meta = header.pop("__metadata__", None)
    if meta is not None and (
        not isinstance(meta, dict)
        or not all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items())
    ):
        add("metadata", "__metadata__ must map strings to strings")
    buffer_len = size - 8 - n
    spans = [
        span
        for name, entry in header.items()
        if (span := _tensor_span(name, entry, buffer_len, add)) is not None
    ]
    _check_tiling(spans, buffer_len, 8 + n, add)
    return len(header)


def _read_header(
    buf: Any, size: int, col: Collector, limits: ScanLimits, member: str | None, add: _Add
) -> tuple[dict[str, Any], int] | None:
    """The JSON header and its length (None: it cannot be read)."""
    if size < 8:
        add("truncated", "shorter than the 8-byte header size", verdict=UNVERIFIABLE)
        return None
    n = struct.unpack_from("<Q", buf, 0)[0]
    if n > limits.max_header:
        col.add(
            "security.limits",
            "limit-max-header",
            f"header size {n} exceeds max_header={limits.max_header}",
            member=member,
        )
        return None
    if 8 + n > size:
        add("header-bounds", f"header size {n} runs past the end of the file ({size} bytes)")
        return None
    raw = buf[8 : 8 + n]
    try:
        text = raw.decode("utf-8")
        if not text.startswith("{"):
            raise ValueError("header does not start with '{'")
        dec = json.JSONDecoder(object_pairs_hook=_no_dupes, parse_constant=_no_constants)
        header, stop = dec.raw_decode(text)
        if text[stop:].strip(" "):
            raise ValueError("bytes after the JSON header")
    except _Dup as e:
        add(
            "duplicate-key",
            f"duplicate key {e.args[0]!r} in the header (readers disagree)",
            name=str(e.args[0])[:200],
        )
        return None
    except (ValueError, RecursionError) as e:
        add("header-json", f"header is not valid JSON: {str(e)[:200]}", verdict=UNVERIFIABLE)
        return None
    if not isinstance(header, dict):
        add("header-json", "header is not a JSON object", verdict=UNVERIFIABLE)
        return None
    return header, n


def _tensor_span(name: str, entry: Any, buffer_len: int, add: _Add) -> tuple[int, int, str] | None:
    """A tensor entry's data range in the buffer (None: the entry is malformed)."""
    if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
        add(
            "entry",
            f"tensor {name!r} must have exactly dtype, shape, data_offsets",
            name=name[:200],
        )
        return None
    dtype, shape, offs = entry["dtype"], entry["shape"], entry["data_offsets"]
    bits = DTYPE_BITS.get(dtype) if isinstance(dtype, str) else None
    if bits is None:
        add("dtype", f"tensor {name!r} has unknown dtype {dtype!r}", name=name[:200])
        return None
    if not isinstance(shape, list) or not all(_is_uint(s) for s in shape):
        add("shape", f"tensor {name!r} has an invalid shape {shape!r:.80}", name=name[:200])
        return None
    if not (isinstance(offs, list) and len(offs) == 2 and all(_is_uint(o) for o in offs)):
        add("offsets", f"tensor {name!r} has invalid data_offsets {offs!r:.80}", name=name[:200])
        return None
    begin, end = offs
    numel = 1
    for s in shape:
        numel *= s
    nbits = numel * bits
    if begin > end or end > buffer_len:
        add(
            "offsets",
            f"tensor {name!r} data [{begin}, {end}) is outside the {buffer_len}-byte buffer",
            name=name[:200],
        )
        return None
    if nbits % 8 or nbits // 8 != end - begin:
        add(
            "size",
            f"tensor {name!r} is {dtype}{shape} = {nbits / 8:g} bytes but its "
            f"data_offsets span {end - begin}",
            name=name[:200],
        )
    return begin, end, name


def _check_tiling(
    spans: list[tuple[int, int, str]], buffer_len: int, data_start: int, add: _Add
) -> None:
    """The tensors' data ranges, sorted, cover the buffer exactly."""
    spans.sort()
    pos = 0
    for begin, end, name in spans:
        if begin < pos:
            add(
                "overlap",
                f"tensor {name!r} data [{begin}, {end}) overlaps the previous tensor",
                name=name[:200],
            )
        elif begin > pos:
            add(
                "gap",
                f"{begin - pos} unaccounted bytes before tensor {name!r}",
                offset=data_start + pos,
            )
        pos = max(pos, end)
    if pos < buffer_len:
        add(
            "trailing-data",
            f"{buffer_len - pos} bytes after the last tensor (appended data)",
            offset=data_start + pos,
        )
