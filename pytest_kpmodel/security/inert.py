"""Inert data recognised by content: what may sit in a model folder besides the weights.

A file is inert when nothing reads it as code or as a pickle: configuration and metadata
(JSON, TOML, plain text - YAML, CSV, Markdown, logs, label and vocabulary lists are text) and
images (PNG, JPEG, GIF, BMP, WebP). Each is recognised from its bytes alone, never from its name,
and checked whole:

* text: valid UTF-8, no NUL and no control characters other than tab, newline, carriage
  return, form feed, vertical tab and escape (ANSI colours in logs); JSON and TOML are text that
  also parses as such (reported as ``json``/``toml``);
* images: the container is walked to its end (PNG chunks with their CRCs up to ``IEND``, JPEG
  segments from ``SOI`` to ``EOI``, the GIF trailer, the BMP and RIFF sizes); bytes after the end
  are reported, since that is where polyglots hide a second file;
* TensorBoard event files (``events.out.tfevents.*``, TFRecord framing): every record's length
  and data CRC-32C checked, records tiling the file exactly.

Text may still carry something that runs: a YAML tag that constructs Python objects
(``!!python/object/apply:...``, which ``yaml.unsafe_load`` - and detectron2's config loader with
``allow_unsafe`` - executes) is a finding, and so is source code, recognised by its first line
(``#!`` interpreters) or, since names may flag but never clear a file, by a code suffix
(``.py``, ``.sh``...).

API: :func:`classify` returns an :class:`Inert` or None (not inert data); :func:`report_inert`
adds the findings for inert data where the scan found it.
"""

from __future__ import annotations

import json
import re
import struct
import tomllib
import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .containers.pickles import trailing_data
from .report import UNSAFE

if TYPE_CHECKING:
    from .context import ScanContext

MAX_TEXT = 256 << 20  # larger text files are not parsed (unverifiable)

# bytes that never occur in text: C0 controls except \t \n \v \f \r and ESC, and DEL
_BINARY = re.compile(rb"[\x00-\x08\x0e-\x1a\x1c-\x1f\x7f]")
_YAML_PYTHON = re.compile(rb"!!python/|tag:yaml\.org,2002:python/|!<tag:yaml\.org,2002:python")
CODE_SUFFIXES = (
    ".py", ".pyw", ".pyc", ".pyo", ".pyd", ".so", ".dll", ".dylib", ".sh", ".bash", ".bat",
    ".cmd", ".ps1", ".js", ".jar", ".exe",
)  # fmt: skip


# names of files that loaders unpickle: text there that starts like a pickle is one
PICKLE_SUFFIXES = (
    ".pkl", ".pickle", ".pk", ".pt", ".pth", ".bin", ".ckpt", ".joblib", ".dat", ".data",
    ".model", ".sav",
)  # fmt: skip


@dataclass
class Inert:
    kind: str  # json | toml | text | png | jpeg | gif | bmp | webp | empty
    end: int  # where the recognised data ends (absolute); < the file's end: appended bytes
    problem: str | None = None  # a finding about the content (python YAML tag, code)
    problem_code: str = ""


def _text(data: bytes) -> str | None:
    if _BINARY.search(data):
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _png(buf: Any, start: int, end: int) -> int | None:
    pos = start + 8
    while pos + 12 <= end:
        (n,) = struct.unpack_from(">I", buf, pos)
        ctype = bytes(buf[pos + 4 : pos + 8])
        if n > end - pos - 12 or not ctype.isalpha():
            return None
        crc = zlib.crc32(memoryview(buf)[pos + 4 : pos + 8 + n])
        if crc != struct.unpack_from(">I", buf, pos + 8 + n)[0]:
            return None
        pos += 12 + n
        if ctype == b"IEND":
            return pos
    return None


def _jpeg(buf: Any, start: int, end: int) -> int | None:
    pos = start + 2
    while pos + 2 <= end:
        if buf[pos] != 0xFF:
            return None
        marker = buf[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0xD9:
            return pos + 2
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:
            pos += 2
            continue
        if pos + 4 > end:
            return None
        (n,) = struct.unpack_from(">H", buf, pos + 2)
        if n < 2 or pos + 2 + n > end:
            return None
        pos += 2 + n
        if marker == 0xDA:  # start of scan: entropy-coded data up to the next real marker
            while pos + 1 < end:
                if buf[pos] == 0xFF and buf[pos + 1] not in (0x00, *range(0xD0, 0xD8)):
                    break
                pos += 1
            else:
                return None
    return None


def _gif(buf: Any, start: int, end: int) -> int | None:
    if end - start < 13:
        return None
    flags = buf[start + 10]
    pos = start + 13 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)
    while pos < end:
        b = buf[pos]
        if b == 0x3B:
            return pos + 1
        if b == 0x21:  # extension: label, then sub-blocks
            pos += 2
        elif b == 0x2C:  # image descriptor, local colour table, LZW size, sub-blocks
            if pos + 10 > end:
                return None
            f = buf[pos + 9]
            pos += 10 + (3 << ((f & 7) + 1) if f & 0x80 else 0) + 1
        else:
            return None
        while pos < end and buf[pos]:
            pos += buf[pos] + 1
        pos += 1
    return None


def _sized(buf: Any, start: int, end: int, kind: str) -> int | None:
    if kind == "bmp" and end - start >= 14:
        n = struct.unpack_from("<I", buf, start + 2)[0]
    elif kind == "webp" and end - start >= 12:
        n = struct.unpack_from("<I", buf, start + 4)[0] + 8
    else:
        return None
    return start + n if 0 < n <= end - start else None


_IMAGES = (
    (b"\x89PNG\r\n\x1a\n", "png", _png),
    (b"\xff\xd8\xff", "jpeg", _jpeg),
    (b"GIF87a", "gif", _gif),
    (b"GIF89a", "gif", _gif),
)


def classify(buf: Any, start: int, end: int, name: str = "") -> Inert | None:
    """The inert kind of ``buf[start:end]``, or None when it is not inert data."""
    n = end - start
    if n == 0:
        return Inert("empty", end)
    head = bytes(buf[start : start + 16])
    for magic, kind, walk in _IMAGES:
        if head.startswith(magic):
            stop = walk(buf, start, end)
            return Inert(kind, stop) if stop is not None else None
    if head[:2] == b"BM" or (head[:4] == b"RIFF" and head[8:12] == b"WEBP"):
        kind = "bmp" if head[:2] == b"BM" else "webp"
        stop = _sized(buf, start, end, kind)
        return Inert(kind, stop) if stop is not None else None
    if n > MAX_TEXT:
        return None
    data = bytes(buf[start:end])
    text = _text(data[3:] if data.startswith(b"\xef\xbb\xbf") else data)
    if text is None:
        return Inert("tfevents", end) if _tfrecord(data) else None
    out = Inert("text", end)
    try:
        if isinstance(json.loads(text), (dict, list)):
            out.kind = "json"
    except (ValueError, RecursionError):
        try:
            if tomllib.loads(text):
                out.kind = "toml"
        except (tomllib.TOMLDecodeError, RecursionError, ValueError):
            pass
    if _YAML_PYTHON.search(data):
        out.problem_code = "yaml-python-tag"
        out.problem = (
            "YAML tag that constructs Python objects (yaml.unsafe_load, and loaders that fall "
            "back to it, run it)"
        )
    elif data.startswith(b"#!") or name.lower().endswith(CODE_SUFFIXES):
        out.problem_code = "source-code"
        out.problem = "source code (a script or module that runs when executed or imported)"
    return out


def _crc32c_table() -> list[int]:
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC32C = _crc32c_table()


def _masked_crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for b in data:
        crc = _CRC32C[(crc ^ b) & 0xFF] ^ (crc >> 8)
    crc ^= 0xFFFFFFFF
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _tfrecord(data: bytes, max_checked: int = 16 << 20) -> bool:
    """TFRecord framing: (u64 length, masked CRC-32C of it, data, masked CRC-32C of data)*."""
    pos, n, checked = 0, 0, 0
    while pos < len(data):
        if pos + 12 > len(data):
            return False
        (length,) = struct.unpack_from("<Q", data, pos)
        if _masked_crc32c(data[pos : pos + 8]) != struct.unpack_from("<I", data, pos + 8)[0]:
            return False
        if pos + 16 + length > len(data):
            return False
        body = data[pos + 12 : pos + 12 + length]
        checked += length
        stored = struct.unpack_from("<I", data, pos + 12 + length)[0]
        # pure-Python CRC: bounded (the framing itself is always checked)
        if checked <= max_checked and _masked_crc32c(body) != stored:
            return False
        pos += 16 + length
        n += 1
    return n > 0


def code_by_name(name: str) -> bool:
    return name.lower().endswith(CODE_SUFFIXES)


# executables and shared libraries, by their magic bytes
_BINARY_CODE = (b"\x7fELF", b"MZ", b"\xfe\xed\xfa\xce", b"\xfe\xed\xfa\xcf", b"\xcf\xfa\xed\xfe",
                b"\xce\xfa\xed\xfe", b"\xca\xfe\xba\xbe")  # fmt: skip


def binary_code(head: bytes) -> bool:
    return head.startswith(_BINARY_CODE)


def report_inert(
    ctx: ScanContext, inert: Inert, start: int, end: int, member: str | None, names: list[str]
) -> str:
    """Inert data: fine inside a folder; named explicitly (or inside an archive) it is not a
    weights format. Code and Python-object YAML tags in text are findings either way."""
    col = ctx.col
    if inert.problem:
        if ctx.allow_code:
            col.add(
                "security.code",
                inert.problem_code,
                f"{inert.problem} (allowed: code=True)",
                severity="info",
                member=member,
            )
        else:
            col.add(
                "security.code",
                inert.problem_code,
                f"{inert.problem}; allow with code=True / --allow-code",
                verdict=UNSAFE,
                member=member,
            )
    if names:
        col.add(
            "security.pickle",
            "pickle-prefix",
            f"{inert.kind} that starts like a protocol-0 pickle: pickle.load would import "
            f"{names[0]} before failing (no call is reached)",
            severity="info",
            member=member,
            name=names[0],
        )
    if inert.end < end:
        trailing_data(
            ctx,
            "security.format",
            f"{end - inert.end} bytes after the end of the {inert.kind} data (appended data, "
            "a polyglot)",
            inert.end,
            end,
            member,
            start,
        )
    if ctx.explicit or member is not None:
        col.add(
            "security.format",
            "not-weights",
            f"{inert.kind} data: inert, but not a weights format",
            member=member,
        )
    else:
        col.add("security.format", "inert", f"inert {inert.kind} data", severity="info")
    return inert.kind
