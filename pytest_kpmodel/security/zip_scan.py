"""A strict zip reader for torch archives: structure checks and our own CRC verification.

torch's reader (miniz in ``PyTorchStreamReader``) trusts the central directory and does not
verify CRCs; Python's ``zipfile`` is lenient in other ways. Differences between readers are
how payloads hide, so this module accepts only what ``torch.save`` writes:

* the file starts with the first local header and ends with the end-of-central-directory
  record (no prepended or appended bytes, no archive comment); zip64 records are consistent;
* local headers, data (+ data descriptors) tile the space before the central directory
  exactly: no gaps, no overlaps, no hidden bytes between members;
* per member: local name == central name (bytes), same flags and method, STORED only (torch
  never compresses), only flag bits 3 (data descriptor) and 11 (utf-8), no encryption, no
  symlink attributes, sizes/CRC in local header or data descriptor equal the central ones,
  names are relative, without ``..``/backslashes/NUL, and unique;
* every member's CRC-32 is recomputed by us (``zlib.crc32`` over zero-copy ``memoryview``
  slices of the mmap'd file) and compared.

API: :func:`read_zip` returns a :class:`ZipInfo` (members in central-directory order) and adds
findings to the collector; :func:`check_crcs` verifies CRCs; :func:`prepended_bytes` finds an
archive that does not start where the file does.
"""

from __future__ import annotations

import stat
import struct
import zlib
from dataclasses import dataclass, field
from typing import Any

from .report import UNVERIFIABLE, Collector

LOCAL_SIG = b"PK\x03\x04"
CENTRAL_SIG = b"PK\x01\x02"
EOCD_SIG = b"PK\x05\x06"
ZIP64_EOCD_SIG = b"PK\x06\x06"
ZIP64_LOC_SIG = b"PK\x06\x07"
DESC_SIG = b"PK\x07\x08"

ALLOWED_FLAGS = 0x0008 | 0x0800
# extra field ids in local headers: torch's 64-byte alignment padding ("FB"), zip64
ALLOWED_EXTRA = {0x4246, 0x0001}
_CRC_CHUNK = 8 << 20


@dataclass
class Member:
    name: str
    raw_name: bytes
    flags: int
    method: int
    crc: int
    csize: int
    size: int
    header_offset: int
    data_offset: int = 0
    end: int = 0  # end of data (+ descriptor)
    external_attr: int = 0


@dataclass
class ZipInfo:
    members: list[Member] = field(default_factory=list)
    cd_offset: int = 0
    ok: bool = False  # structure parsed far enough to use the members
    appended: tuple[int, int] | None = None  # bytes after the end record (absolute offsets)

    def by_name(self) -> dict[str, Member]:
        return {m.name: m for m in self.members}


def _extras(data: bytes) -> list[tuple[int, bytes]] | None:
    out = []
    i = 0
    while i < len(data):
        if i + 4 > len(data):
            return None
        hid, n = struct.unpack_from("<HH", data, i)
        if i + 4 + n > len(data):
            return None
        out.append((hid, data[i + 4 : i + 4 + n]))
        i += 4 + n
    return out


def find_eocd(buf: Any, size: int) -> int:
    """Offset of the last end-of-central-directory signature in the final 64 KiB (-1: none)."""
    lo = max(0, size - 22 - 0xFFFF)
    return buf.rfind(EOCD_SIG, lo, size)


def prepended_bytes(buf: Any, start: int, end: int) -> int:
    """How many bytes come before a zip archive whose end record closes ``buf[start:end]``
    (where its central directory says the archive starts); 0 when none, or no such archive."""
    eocd = find_eocd(buf, end)
    if eocd < start or eocd + 22 > end:
        return 0
    cd_size, cd_off = struct.unpack_from("<II", buf, eocd + 12)
    cd_end = eocd
    if eocd - 76 >= start and buf[eocd - 20 : eocd - 16] == ZIP64_LOC_SIG:
        cd_end = eocd - 76
        cd_size, cd_off = struct.unpack_from("<QQ", buf, cd_end + 40)
    prefix = (cd_end - start) - (cd_off + cd_size)
    if 0 < prefix < end - start and buf[start + prefix : start + prefix + 4] == LOCAL_SIG:
        return prefix
    return 0


class _Findings:
    """The ``security.zip`` findings of one archive (offsets relative to its start)."""

    def __init__(self, col: Collector, member: str | None) -> None:
        self.col, self.member = col, member

    def __call__(
        self,
        code: str,
        why: str,
        verdict: str | None = None,
        offset: int | None = None,
        name: str | None = None,
    ) -> None:
        self.col.add(
            "security.zip",
            code,
            why,
            verdict=verdict,
            member=self.member,
            offset=offset,
            name=name,
            dedupe=(code, name, offset if name is None else None),
        )


@dataclass
class _Directory:
    """Where the end record (or its zip64 twin) says the central directory is."""

    entries: int
    size: int
    offset: int  # relative to the archive's start
    end: int  # absolute: where the directory must end (the end record, or the zip64 record)


def read_zip(
    buf: Any,
    start: int,
    end: int,
    col: Collector,
    member: str | None = None,
    max_members: int = 200_000,
) -> ZipInfo:
    """Parse the zip occupying ``buf[start:end]`` strictly. Offsets in findings are relative
    to ``start``. ``member`` names the enclosing archive member for nested archives."""
    info = ZipInfo()
    add = _Findings(col, member)
    d = _end_record(buf, start, end, add, info)
    if d is None:
        return info
    if d.entries > max_members:
        col.add(
            "security.limits",
            "limit-max-members",
            f"{d.entries} zip members exceed max_members={max_members}",
            verdict=UNVERIFIABLE,
            member=member,
        )
        return info
    cd = start + d.offset
    if d.offset + d.size != d.end - start:
        add(
            "cd-gap",
            f"central directory ({d.offset}+{d.size}) does not end where the end "
            f"record starts ({d.end - start})",
            offset=d.offset,
        )
        if cd + d.size > d.end or cd < start:
            return info
    members = _central_directory(buf, start, cd, d, add)
    if members is None:
        return info
    info.members = members
    info.cd_offset = d.offset
    if not all(_check_member(buf, start, cd, m, add) for m in members):
        return info
    _check_layout(start, members, d.offset, add)
    info.ok = True
    return info


def _end_record(buf: Any, start: int, end: int, add: _Findings, info: ZipInfo) -> _Directory | None:
    """The end-of-central-directory record (and zip64's): no bytes after it, one disk."""
    size = end - start
    if size < 22:
        add("truncated", "too short to be a zip archive", UNVERIFIABLE)
        return None
    eocd = start + size - 22
    if buf[eocd : eocd + 4] != EOCD_SIG:
        found = find_eocd(buf, end)
        if found < start or found + 22 > end:
            add(
                "no-eocd",
                "no end-of-central-directory record: not a complete zip archive",
                UNVERIFIABLE,
            )
            return None
        info.appended = (found + 22, end)
        add(
            "appended-data",
            f"{end - found - 22} bytes after the end-of-central-directory record "
            "(archive comment or appended data); torch.save writes none",
            offset=found - start + 22,
        )
        eocd = found
    (disk, cd_disk, n_disk, n_total, cd_size, cd_off, clen) = struct.unpack_from(
        "<HHHHIIH", buf, eocd + 4
    )
    if clen and eocd + 22 + clen <= end and eocd == start + size - 22 - clen:
        add("comment", "archive comment present; torch.save writes none", offset=eocd - start)
    if disk or cd_disk or n_disk != n_total:
        add("multi-disk", "multi-disk archive fields are set", offset=eocd - start)
    d = _Directory(n_total, cd_size, cd_off, eocd)
    loc = eocd - 20
    if loc >= start and buf[loc : loc + 4] == ZIP64_LOC_SIG:
        return _zip64(buf, start, loc, d, add)
    return d


def _zip64(buf: Any, start: int, loc: int, d: _Directory, add: _Findings) -> _Directory | None:
    """The zip64 end record named by the locator at ``loc``: right before it, one disk, and
    agreeing with the plain end record wherever that one is not a sentinel."""
    z_disk, z_off, z_disks = struct.unpack_from("<IQI", buf, loc + 4)
    z = start + z_off
    if z_disk or z_disks != 1:
        add("multi-disk", "zip64 locator names another disk", offset=loc - start)
    if z + 56 != loc or buf[z : z + 4] != ZIP64_EOCD_SIG:
        add("zip64", "zip64 end record is not right before its locator", offset=loc - start)
        return None
    rec_size, _vm, _vn, d1, d2, n1, n2, cs64, co64 = struct.unpack_from("<QHHIIQQQQ", buf, z + 4)
    if rec_size != 44 or d1 or d2 or n1 != n2:
        add("zip64", "zip64 end record has extensible data or disk fields", offset=z - start)
    for small, big, what in (
        (d.entries, n2, "entry count"),
        (d.size, cs64, "cd size"),
        (d.offset, co64, "cd offset"),
    ):
        sentinel = 0xFFFF if what == "entry count" else 0xFFFFFFFF
        if small != big and small != sentinel:
            add(
                "zip64",
                f"zip64 {what} {big} disagrees with the end record's {small}",
                offset=z - start,
            )
    return _Directory(n2, cs64, co64, z)


def _central_directory(
    buf: Any, start: int, cd: int, d: _Directory, add: _Findings
) -> list[Member] | None:
    """The central directory's entries, in order (None: it cannot be read on)."""
    p = cd
    names: dict[bytes, int] = {}
    members: list[Member] = []
    for i in range(d.entries):
        if p + 46 > d.end or buf[p : p + 4] != CENTRAL_SIG:
            add(
                "cd-entry", f"central directory entry {i} is missing or malformed", offset=p - start
            )
            return None
        m, length = _central_entry(buf, start, p, i, d.end, add)
        if m is None:
            return None
        if m.raw_name in names:
            add(
                "duplicate",
                f"duplicate member name {m.name!r} (readers disagree on which copy wins)",
                name=m.name,
            )
        names[m.raw_name] = i
        members.append(m)
        p += length
    if p != d.end:
        add(
            "cd-gap",
            f"{d.end - p} unaccounted bytes after the central directory",
            offset=p - start,
        )
    return members


def _central_entry(
    buf: Any, start: int, p: int, i: int, cd_end: int, add: _Findings
) -> tuple[Member | None, int]:
    """Central directory entry ``i`` at ``p``: the member and the entry's length."""
    (
        _made,
        _need,
        flags,
        method,
        _t,
        _d,
        crc,
        csize,
        usize,
        nlen,
        xlen,
        mlen,
        dstart,
        _iattr,
        eattr,
        lho,
    ) = struct.unpack_from("<HHHHHHIIIHHHHHII", buf, p + 4)
    raw = buf[p + 46 : p + 46 + nlen]
    extra = buf[p + 46 + nlen : p + 46 + nlen + xlen]
    if p + 46 + nlen + xlen + mlen > cd_end:
        add("cd-entry", f"central directory entry {i} runs past the directory", offset=p - start)
        return None, 0
    ex = _extras(extra)
    if ex is None:
        add("extra", f"malformed extra field in central entry {raw[:80]!r}", offset=p - start)
        return None, 0
    for hid, data in ex:
        if hid == 0x0001:  # zip64: fields present only for sentinel values, in order
            vals = list(struct.unpack_from(f"<{len(data) // 8}Q", data))
            if usize == 0xFFFFFFFF and vals:
                usize = vals.pop(0)
            if csize == 0xFFFFFFFF and vals:
                csize = vals.pop(0)
            if lho == 0xFFFFFFFF and vals:
                lho = vals.pop(0)
        elif hid not in ALLOWED_EXTRA:
            add("extra", f"unusual extra field 0x{hid:04x} in central entry", name=_nm(raw))
    if mlen:
        add("comment", "member comment present; torch.save writes none", name=_nm(raw))
    if dstart:
        add("multi-disk", "member on another disk", name=_nm(raw))
    m = Member(_nm(raw), raw, flags, method, crc, csize, usize, lho, external_attr=eattr)
    return m, 46 + nlen + xlen + mlen


def _check_member(buf: Any, start: int, cd: int, m: Member, add: _Findings) -> bool:
    """One member's name, flags, method, sizes and attributes, then its local header (False:
    the local header cannot be used, so neither can the layout)."""
    _check_name(m, add)
    if m.flags & 0x0001 or m.flags & 0x0040:
        add("encrypted", f"member {m.name!r} is encrypted", name=m.name)
    elif m.flags & ~ALLOWED_FLAGS:
        add("flags", f"member {m.name!r} has unusual flags 0x{m.flags:04x}", name=m.name)
    if m.method not in (0, 8):
        add("compressed", f"member {m.name!r} uses compression method {m.method}", name=m.name)
    if m.csize != m.size and m.method == 0:
        add(
            "sizes",
            f"stored member {m.name!r} has compressed size {m.csize} != size {m.size}",
            name=m.name,
        )
    mode = (m.external_attr >> 16) & 0xFFFF
    if mode and (stat.S_ISLNK(mode) or not (stat.S_ISREG(mode) or stat.S_IFMT(mode) == 0)):
        add(
            "attributes",
            f"member {m.name!r} is marked as a symlink or special file",
            name=m.name,
        )
    return _local(buf, start, cd, m, add)


def _check_layout(start: int, members: list[Member], cd_off: int, add: _Findings) -> None:
    """Local headers, data and descriptors tile the bytes before the central directory."""
    pos = 0
    for m in sorted(members, key=lambda x: x.header_offset):
        if m.header_offset > pos:
            what = "before the first member" if pos == 0 else "between members"
            add(
                "gap",
                f"{m.header_offset - pos} unaccounted bytes {what} (prepended or hidden data)",
                offset=pos,
            )
        elif m.header_offset < pos:
            add("overlap", f"member {m.name!r} overlaps the previous member", name=m.name)
        pos = max(pos, m.end - start)
    if pos < cd_off:
        add("gap", f"{cd_off - pos} unaccounted bytes before the central directory", offset=pos)
    elif pos > cd_off:
        add("overlap", "member data overlaps the central directory", offset=cd_off)


def _nm(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")


def _check_name(m: Member, add: _Findings) -> None:
    n = m.name
    bad = (
        not n
        or "\x00" in n
        or "\\" in n
        or n.startswith("/")
        or n.endswith("/")
        or any(part in ("", ".", "..") for part in n.split("/"))
        or (len(n) > 1 and n[1] == ":")
    )
    try:
        m.raw_name.decode("utf-8")
    except UnicodeDecodeError:
        bad = True
    if bad:
        add("name", f"unsafe member name {n!r}", name=n)


def _local(buf: Any, start: int, cd: int, m: Member, add: _Findings) -> bool:
    """The member's local header agrees with its central entry; sets where its data starts and
    where it ends (after the data descriptor). False: no usable local header or data."""
    h = start + m.header_offset
    if h + 30 > cd or buf[h : h + 4] != LOCAL_SIG:
        add(
            "local-header",
            f"no local header for member {m.name!r} at offset {m.header_offset}",
            UNVERIFIABLE,
            name=m.name,
        )
        return False
    (_need, flags, method, _t, _d, crc, csize, usize, nlen, xlen) = struct.unpack_from(
        "<HHHHHIIIHH", buf, h + 4
    )
    raw = buf[h + 30 : h + 30 + nlen]
    extra = buf[h + 30 + nlen : h + 30 + nlen + xlen]
    if raw != m.raw_name:
        add(
            "name-mismatch",
            f"local header name {_nm(raw)!r} differs from central directory name {m.name!r}",
            name=m.name,
        )
    if flags != m.flags or method != m.method:
        add(
            "header-mismatch",
            f"local header flags/method of {m.name!r} differ from the central directory",
            name=m.name,
        )
    zip64, usize, csize = _local_extras(extra, m, usize, csize, add)
    m.data_offset = h + 30 + nlen + xlen
    data_end = m.data_offset + m.csize
    if data_end > cd:
        add(
            "bounds",
            f"member {m.name!r} data runs into the central directory",
            UNVERIFIABLE,
            name=m.name,
        )
        return False
    if m.flags & 0x0008:
        m.end = _descriptor_end(buf, data_end, cd, m, zip64, add)
        announced = bool(crc or csize or usize)  # a descriptor's header may leave them zero
    else:
        m.end = data_end
        announced = True
    if announced and (crc, csize, usize) != (m.crc, m.csize, m.size):
        add(
            "header-mismatch",
            f"local header CRC/sizes of {m.name!r} differ from the central directory",
            name=m.name,
        )
    return True


def _local_extras(
    extra: bytes, m: Member, usize: int, csize: int, add: _Findings
) -> tuple[bool, int, int]:
    """A local header's extra fields: (has zip64, size, compressed size) after zip64's."""
    ex = _extras(extra)
    if ex is None:
        add("extra", f"malformed local extra field of {m.name!r}", name=m.name)
        ex = []
    zip64 = False
    for hid, data in ex:
        if hid == 0x0001:
            zip64 = True
            vals = struct.unpack_from(f"<{len(data) // 8}Q", data)
            if usize == 0xFFFFFFFF and vals:
                usize = vals[0]
            if csize == 0xFFFFFFFF and len(vals) > 1:
                csize = vals[1]
        elif hid not in ALLOWED_EXTRA:
            add(
                "extra",
                f"unusual extra field 0x{hid:04x} in local header of {m.name!r}",
                name=m.name,
            )
    return zip64, usize, csize


def _descriptor_end(buf: Any, d: int, cd: int, m: Member, zip64: bool, add: _Findings) -> int:
    """Where the data descriptor at ``d`` ([sig] crc csize usize, 4 or 8 bytes each) ends, if
    it agrees with the central directory; else a finding, and ``d``."""
    for sig in (True, False):
        o = d + (4 if sig else 0)
        if sig and buf[d : d + 4] != DESC_SIG:
            continue
        for wide in (True, False) if zip64 or m.size >= 0xFFFFFFFF else (False, True):
            n = 8 if wide else 4
            if o + 4 + 2 * n > cd:
                continue
            fmt = "<IQQ" if wide else "<III"
            dcrc, dcs, dus = struct.unpack_from(fmt, buf, o)
            if (dcrc, dcs, dus) == (m.crc, m.csize, m.size):
                return o + 4 + 2 * n
    add(
        "descriptor",
        f"data descriptor of {m.name!r} is missing or disagrees with the central directory",
        name=m.name,
    )
    return d


def check_crcs(buf: Any, members: list[Member], col: Collector, member: str | None = None) -> None:
    """Recompute every member's CRC-32 over the stored bytes (zero-copy, chunked)."""
    mv = memoryview(buf)
    try:
        for m in members:
            if m.data_offset == 0:
                continue
            crc = 0
            a, b = m.data_offset, m.data_offset + m.csize
            if m.method == 8:
                crc = _inflate_crc(mv[a:b], m, col, member)
                if crc is None:
                    continue
            elif m.method != 0:
                continue
            else:
                for i in range(a, b, _CRC_CHUNK):
                    crc = zlib.crc32(mv[i : min(b, i + _CRC_CHUNK)], crc)
            if crc != m.crc:
                col.add(
                    "security.zip",
                    "crc",
                    f"CRC-32 of member {m.name!r} is {crc:08x}, the archive says {m.crc:08x} "
                    "(modified after writing; torch does not check)",
                    member=member,
                    name=m.name,
                )
    finally:
        mv.release()


def _inflate_crc(
    data: Any, m: Member, col: Collector, member: str | None, limit: int = 64 << 20
) -> int | None:
    """CRC-32 of a deflated member, inflating at most ``limit`` bytes (zip bombs)."""
    if m.size > limit:
        col.add(
            "security.limits",
            "inflate-size",
            f"compressed member {m.name!r} inflates to {m.size} bytes; not checked",
            verdict=UNVERIFIABLE,
            member=member,
            name=m.name,
        )
        return None
    d = zlib.decompressobj(-15)
    try:
        out = d.decompress(data, m.size + 1)
    except zlib.error:
        out = None
    if out is None or len(out) != m.size or not d.eof:
        col.add(
            "security.zip",
            "inflate",
            f"compressed member {m.name!r} does not inflate to its declared {m.size} bytes",
            member=member,
            name=m.name,
        )
        return None
    return zlib.crc32(out)
