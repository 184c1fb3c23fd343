"""Torch containers: zip archives (state dicts, TorchScript, torch.export), the legacy non-zip
format, legacy tar checkpoints, and plain pickles.

zip archives (``torch.save`` since 1.6): strict zip structure (:mod:`.zip_scan`), one top
folder, only the member names torch writes::

    <top>/data.pkl  <top>/data/<key>  <top>/version  <top>/byteorder  <top>/.format_version
    <top>/.storage_alignment  <top>/.data/serialization_id  <top>/.data/version

their small metadata members have the expected content, no member is itself an archive, and
the tensor records in ``data.pkl`` match the archive: each persistent id's storage key has a
``data/<key>`` member of exactly ``numel * element_size`` bytes, every data member is referenced,
and every tensor's offset/size/stride stays inside its storage.

TorchScript archives (``code/``, ``constants.pkl``) carry code that ``torch.jit.load`` compiles
and runs: a ``security.code`` finding unless the caller allows code. torch.export archives
(``archive_format``, ``models/``) are checked member by member; pickled members (which
``torch.export.load`` loads with ``weights_only=False``) and nested torch files are scanned
recursively; AOTInductor shared objects are code.

Legacy non-zip format (``_use_new_zipfile_serialization=False``) is scanned whole: the magic
number, protocol version and sys-info pickles (plain values only), the payload pickle, the
storage-key list (must equal the keys the payload references, sorted), then every storage's
``int64 numel`` + bytes, and nothing after. Legacy *tar* checkpoints (torch < 0.1.10) cannot be
loaded with ``weights_only=True``: always ``unverifiable`` (their pickles are still scanned).
"""

from __future__ import annotations

import json
import re
import struct
import tarfile
from typing import TYPE_CHECKING, Any

from ..allowlist import Allowed, Allowlist
from ..numpy_scan import inflate_member, scan_npz
from ..pickle_scan import (
    OPAQUE,
    Container,
    PickleRules,
    StorageTable,
    make_rules,
    scan_pickle,
)
from ..report import UNVERIFIABLE, Collector, ScanLimits
from ..zip_scan import CENTRAL_SIG, EOCD_SIG, LOCAL_SIG, Member, ZipInfo, check_crcs, read_zip

if TYPE_CHECKING:
    from ..scan import _Ctx

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL_VERSION = 1001
_LEGACY_PREFIXES = tuple(
    bytes([0x80, p, 0x8A, 0x0A]) + LEGACY_MAGIC.to_bytes(10, "little") + b"." for p in (2, 3)
)

_META = {
    "version": re.compile(rb"^[0-9]{1,4}\n?$"),
    ".data/version": re.compile(rb"^[0-9]{1,4}\n?$"),
    "byteorder": re.compile(rb"^(little|big)$"),
    ".format_version": re.compile(rb"^[0-9]{1,4}$"),
    ".storage_alignment": re.compile(rb"^[0-9]{1,6}$"),
    ".data/serialization_id": re.compile(rb"^[0-9A-Za-z]{1,64}$"),
}
_DATA = re.compile(r"^data/([0-9]{1,40})$")
_TS_ALLOWED = re.compile(
    r"^(data\.pkl|constants\.pkl|version|byteorder|\.data/version|\.data/serialization_id|"
    r"\.format_version|\.storage_alignment|data/[0-9]{1,40}|constants/[0-9]{1,40}|"
    r"code/.+|extra/.+|\.data/.+)$"
)
_PT2_ALLOWED = re.compile(
    r"^(archive_format|archive_version|version|byteorder|\.data/version|\.data/serialization_id|"
    r"models/[^/]+\.json|data/weights/[^/]+|data/constants/[^/]+|data/sample_inputs/[^/]+|"
    r"extra/.+|data/aotinductor/.+)$"
)


def is_legacy_torch(buf: Any) -> bool:
    head = buf[:15]
    return head in _LEGACY_PREFIXES


# --------------------------------------------------------------------------- zip archives


def scan_zip(ctx: _Ctx, start: int, end: int, member: str | None = None) -> str:
    """Scan the zip archive at ``buf[start:end]``; returns the detected kind."""
    col = ctx.col
    z: ZipInfo = read_zip(ctx.buf, start, end, col, member, ctx.limits.max_members)
    if z.appended is not None:  # a loader that finds the last end record may read it
        a, b = z.appended
        if parses_as_pickle(ctx, a, b):
            scan_stacked(ctx, a, b, member, start)
        elif ctx.buf[a : a + 4] in (LOCAL_SIG, EOCD_SIG):
            ctx.nested(a, b, (member + "!" if member else "") + f"@{a - start}")
    if not z.ok:
        # the layout cannot be trusted: still scan every member a local header announces
        _salvage(ctx, local_members(ctx.buf, start, end, ctx.limits.max_members), member)
        return "zip"
    check_crcs(ctx.buf, z.members, col, member)
    names = [m.name for m in z.members]
    if names and all(n.endswith(".npy") for n in names):
        return _scan_npz(ctx, z, start, end, member)
    tops = {n.split("/", 1)[0] for n in names}
    where = f"{member}!" if member else ""

    def add(
        check: str,
        code: str,
        why: str,
        verdict: str | None = None,
        name: str | None = None,
        m: str | None = None,
    ) -> None:
        col.add(check, code, why, verdict=verdict, member=m or member, name=name)

    if len(tops) != 1 or any("/" not in n for n in names):
        add(
            "security.container",
            "top-folder",
            f"archive members are not all inside one top folder ({sorted(tops)[:5]})",
        )
        _salvage(ctx, z.members, member)
        return "zip"
    top = tops.pop()
    rel = {n[len(top) + 1 :]: m for n, m in zip(names, z.members, strict=True)}
    if any(r.startswith("code/") for r in rel) or "constants.pkl" in rel:
        kind = "torchscript"
    elif "archive_format" in rel or any(r.startswith("models/") for r in rel):
        kind = "torch-export"
    elif "data.pkl" in rel:
        kind = "torch-zip"
    else:
        add(
            "security.container",
            "no-data-pkl",
            f"zip archive without {top}/data.pkl is not a torch file",
        )
        _salvage(ctx, z.members, member)
        return "zip"

    def content(r: str) -> bytes:
        m = rel[r]
        return ctx.buf[m.data_offset : m.data_offset + m.size]

    # metadata members
    for r, rx in _META.items():
        if r in rel:
            m = rel[r]
            if m.size > 128 or not rx.match(content(r)):
                add(
                    "security.container",
                    "metadata",
                    f"member {m.name!r} has unexpected content",
                    name=m.name,
                )

    if kind == "torch-export":
        for m in rel.values():
            if m.method != 0:
                add(
                    "security.zip",
                    "compressed",
                    f"member {m.name!r} is compressed (method "
                    f"{m.method}); torch stores it uncompressed",
                    name=m.name,
                )
        _scan_pt2(ctx, top, rel, member)
        return kind

    # compression: torch.save stores everything; TorchScript deflates its code and extras
    for r, m in rel.items():
        deflate_ok = kind == "torchscript" and (r.startswith(("code/", "extra/")))
        if m.method != 0 and not (m.method == 8 and deflate_ok):
            add(
                "security.zip",
                "compressed",
                f"member {m.name!r} is compressed (method {m.method}); torch stores it "
                "uncompressed",
                name=m.name,
            )
    # member names
    allowed_name = (
        (lambda r: bool(_TS_ALLOWED.match(r)))
        if kind == "torchscript"
        else (lambda r: r == "data.pkl" or r in _META or bool(_DATA.match(r)))
    )
    unexpected = []
    for r, m in rel.items():
        if not allowed_name(r):
            add(
                "security.container",
                "member-name",
                f"unexpected member {m.name!r}; torch.save does not write it",
                name=m.name,
            )
            unexpected.append(m)
    # nested archives
    for m in rel.values():
        if m.size >= 4 and ctx.buf[m.data_offset : m.data_offset + 4] in (LOCAL_SIG, EOCD_SIG):
            add(
                "security.container",
                "nested-archive",
                f"member {m.name!r} is itself a zip archive",
                name=m.name,
            )
            if m not in unexpected:
                unexpected.append(m)
    _salvage(ctx, unexpected, member)

    if kind == "torchscript":
        code = sorted(r for r in rel if r.startswith("code/"))
        if ctx.allow_code:
            col.add(
                "security.code",
                "torchscript",
                f"{where}TorchScript archive with {len(code)} code files (allowed: code=True)",
                severity="info",
                member=member,
            )
        else:
            add(
                "security.code",
                "torchscript",
                f"TorchScript archive: torch.jit.load compiles and runs its {len(code)} code "
                "files (allow with code=True / --allow-code)",
            )
        allow: Allowlist = _TorchScriptAllowlist(ctx.allowlist)
        for pkl, prefix in (("data.pkl", "data/"), ("constants.pkl", "constants/")):
            if pkl in rel:
                _scan_data_pickle(ctx, rel, top, pkl, prefix, allow, member)
        return kind

    _scan_data_pickle(ctx, rel, top, "data.pkl", "data/", ctx.allowlist, member)
    return kind


def _scan_data_pickle(
    ctx: _Ctx,
    rel: dict[str, Any],
    top: str,
    pkl: str,
    prefix: str,
    allow: Allowlist,
    outer: str | None,
) -> None:
    col = ctx.col
    m = rel[pkl]
    label = f"{outer}!{m.name}" if outer else m.name
    table = StorageTable(col, label, legacy=False)
    rules = make_rules("torch", allow, table)
    if m.method != 0:  # already a finding; torch's reader inflates it, so scan what it reads
        data = inflate_member(ctx.buf, m) if m.method == 8 else None
        if data is not None:
            res = scan_pickle(data, 0, len(data), col, rules, ctx.limits, member=label)
            ctx.add_globals(res.globals)
        return
    res = scan_pickle(
        ctx.buf, m.data_offset, m.data_offset + m.size, col, rules, ctx.limits, member=label
    )
    ctx.add_globals(res.globals)
    ctx.tensors += res.tensors
    if res.complete and res.end != m.data_offset + m.size:
        col.add(
            "security.pickle",
            "trailing-data",
            f"{m.data_offset + m.size - res.end} bytes after the pickle's STOP (a second, "
            "hidden pickle or padding)",
            member=label,
            offset=res.end - m.data_offset,
        )
        scan_stacked(ctx, res.end, m.data_offset + m.size, label, m.data_offset)
    if not res.complete:
        return
    # storages vs data members
    data_members = {
        r[len(prefix) :]: mm
        for r, mm in rel.items()
        if r.startswith(prefix) and r[len(prefix) :].isdigit()
    }
    ctx.storages += len(table.roots)
    for key, ref in table.roots.items():
        dm = data_members.get(key)
        if dm is None:
            col.add(
                "security.tensor",
                "storage-missing",
                f"storage {key!r} ({ref.type_name}) has no member {top}/{prefix}{key}",
                member=label,
                offset=ref.offset,
                name=key,
            )
        elif dm.size != ref.nbytes:
            col.add(
                "security.tensor",
                "storage-size",
                f"storage {key!r} is {ref.type_name}[{ref.numel}] = {ref.nbytes} bytes but "
                f"member {dm.name!r} holds {dm.size}",
                member=label,
                offset=ref.offset,
                name=key,
            )
    for key, dm in data_members.items():
        if key not in table.roots and pkl == "data.pkl":
            col.add(
                "security.tensor",
                "storage-unreferenced",
                f"member {dm.name!r} is not referenced by {pkl} (hidden data)",
                member=outer,
                name=dm.name,
            )


class _TorchScriptAllowlist(Allowlist):
    """TorchScript pickles are read by torch's C++ unpickler, which resolves ``__torch__``
    classes from the archive's own code and a fixed set of torch helpers; it never imports
    Python modules. Those names are accepted (the archive is already a code finding);
    everything else still goes through the normal allow-list."""

    def __init__(self, base: Allowlist) -> None:
        self.entries = base.entries
        self.extra = base.extra

    def lookup(self, module: str, name: str) -> Allowed | None:
        if (
            module.startswith("__torch__")
            or module == "torch.jit._pickle"
            or (module, name) in (("torch", "device"), ("torch", "Tensor"))
        ):
            return Allowed(module, name, "ts", "TorchScript")
        return super().lookup(module, name)


def _scan_pt2(ctx: _Ctx, top: str, rel: dict[str, Any], outer: str | None) -> None:
    col = ctx.col
    code = []
    for r, m in rel.items():
        label = f"{outer}!{m.name}" if outer else m.name
        if not _PT2_ALLOWED.match(r):
            col.add(
                "security.container",
                "member-name",
                f"unexpected member {m.name!r} in a torch.export archive",
                member=outer,
                name=m.name,
            )
            continue
        if r.startswith("data/aotinductor/") or r.endswith((".so", ".dll", ".dylib")):
            code.append(r)
            continue
        head = ctx.buf[m.data_offset : m.data_offset + 4]
        if r.endswith(".json"):
            if m.size > 256 << 20:
                col.add(
                    "security.limits",
                    "json-size",
                    f"{m.name!r} is too large to check",
                    verdict=UNVERIFIABLE,
                    member=outer,
                )
                continue
            try:
                json.loads(ctx.buf[m.data_offset : m.data_offset + m.size])
            except (ValueError, RecursionError):
                col.add(
                    "security.container",
                    "json",
                    f"{m.name!r} is not valid JSON",
                    member=outer,
                    name=m.name,
                )
        elif head[:4] in (LOCAL_SIG, EOCD_SIG) or head[:1] == b"\x80":
            # a nested torch file (pickled weights/constants, sample inputs): torch.export.load
            # reads some of these with weights_only=False, so they get the full scan
            ctx.nested(m.data_offset, m.data_offset + m.size, label)
    if code:
        if ctx.allow_code:
            col.add(
                "security.code",
                "aoti",
                f"AOTInductor code in archive ({len(code)} files; allowed: code=True)",
                severity="info",
                member=outer,
            )
        else:
            col.add(
                "security.code",
                "aoti",
                f"archive contains compiled code ({code[0]!r}, {len(code)} files) that "
                "loading may run",
                member=outer,
            )


# --------------------------------------------------------------------------- legacy format


def scan_legacy(ctx: _Ctx, start: int, end: int, member: str | None = None) -> str:
    col, buf, lim = ctx.col, ctx.buf, ctx.limits
    header = make_rules("header", ctx.allowlist)
    pos = start
    values = []
    for _what in ("magic number", "protocol version", "sys info"):
        res = scan_pickle(buf, pos, end, col, header, lim, member=member, base=start)
        ctx.add_globals(res.globals)
        if not res.complete:
            return "torch-legacy"
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
        return "torch-legacy"
    if not _plain_dict(sysinfo) or ("little_endian", True) not in _pairs(sysinfo):
        col.add(
            "security.container",
            "legacy-sysinfo",
            "legacy sys_info is not a little-endian {protocol_version, little_endian, "
            "type_sizes} dict",
            verdict=UNVERIFIABLE,
            member=member,
        )
    table = StorageTable(col, member, legacy=True)
    res = scan_pickle(
        buf,
        pos,
        end,
        col,
        make_rules("torch", ctx.allowlist, table),
        lim,
        member=member,
        base=start,
    )
    ctx.add_globals(res.globals)
    ctx.tensors += res.tensors
    if not res.complete:
        return "torch-legacy"
    pos = res.end
    res = scan_pickle(buf, pos, end, col, header, lim, member=member, base=start)
    ctx.add_globals(res.globals)
    if not res.complete:
        return "torch-legacy"
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
        return "torch-legacy"
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
        return "torch-legacy"
    for key in keys.items:
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
            return "torch-legacy"
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
            return "torch-legacy"
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
            return "torch-legacy"
    if pos != end:
        col.add(
            "security.container",
            "trailing-data",
            f"{end - pos} bytes after the last storage (appended data or a stacked pickle)",
            member=member,
            offset=pos - start,
        )
        scan_stacked(ctx, pos, end, member, start)
    return "torch-legacy"


def _lenient_rules(allowlist: Allowlist) -> PickleRules:
    """Torch rules whose persistent ids are accepted unchecked: for pickles that are already
    a finding (stacked, hidden), where only what they import and call matters."""
    rules = make_rules("torch", allowlist, None)
    rules.persistent_load = lambda pid, off: OPAQUE
    return rules


def parses_as_pickle(ctx: _Ctx, start: int, end: int, buf: Any = None) -> bool:
    """Whether CPython's unpickler would get anywhere with ``buf[start:end]`` (default: the
    file): it parses to STOP, or imports something before failing (probed with a scratch
    collector)."""
    lim = ScanLimits(max_ops=min(ctx.limits.max_ops, 100_000), max_findings=10)
    scratch = Collector("", lim)
    b = ctx.buf if buf is None else buf
    res = scan_pickle(b, start, end, scratch, _lenient_rules(ctx.allowlist), lim, probe=True)
    return res.complete or bool(res.globals)


def local_members(buf: Any, start: int, end: int, limit: int) -> list[Member]:
    """Every local file header in ``buf[start:end]``, found by its signature (for archives
    whose central directory cannot be used): members in file order, sizes as announced."""
    out: list[Member] = []
    pos = buf.find(LOCAL_SIG, start, end)
    while pos >= 0 and pos + 30 <= end and len(out) < limit:
        flags, method, _t, _d, crc, csize, size, nlen, xlen = struct.unpack_from(
            "<HHHHIIIHH", buf, pos + 6
        )
        raw = bytes(buf[pos + 30 : pos + 30 + nlen])
        data = pos + 30 + nlen + xlen
        nxt = buf.find(LOCAL_SIG, data, end)
        stop = end if nxt < 0 else nxt
        cd = buf.find(CENTRAL_SIG, data, stop)
        stop = stop if cd < 0 else cd
        if csize in (0, 0xFFFFFFFF) or data + csize > end:  # data descriptor or zip64
            csize = max(0, stop - data)
            size = csize if method == 0 else size
        m = Member(
            raw.decode("utf-8", "replace"), raw, flags, method, crc, csize, size, pos - start
        )
        m.data_offset, m.end = data, data + csize
        out.append(m)
        pos = nxt
    return out


def _salvage(ctx: _Ctx, members: list[Member], outer: str | None) -> None:
    """Members of an archive that is already a finding: each one that holds a pickle or an
    archive is scanned (leniently: persistent ids unchecked), so what it imports is named."""
    for m in members:
        if m.data_offset <= 0:
            continue
        label = f"{outer}!{m.name}" if outer else m.name
        if m.method == 0:
            buf, s, e = ctx.buf, m.data_offset, min(m.data_offset + m.csize, ctx.size)
        elif m.method == 8:
            data = inflate_member(ctx.buf, m)
            if data is None:
                continue
            buf, s, e = data, 0, len(data)
        else:
            continue
        if buf is ctx.buf and buf[s : s + 4] in (LOCAL_SIG, EOCD_SIG):
            ctx.nested(s, e, label)
        elif e > s and parses_as_pickle(ctx, s, e, buf):
            res = scan_pickle(
                buf, s, e, ctx.col, _lenient_rules(ctx.allowlist), ctx.limits, member=label
            )
            ctx.add_globals(res.globals)
            if res.complete and res.end < e and buf is ctx.buf:
                scan_stacked(ctx, res.end, e, label, s)


def _scan_npz(ctx: _Ctx, z: ZipInfo, start: int, end: int, member: str | None) -> str:
    """A zip whose members are all ``.npy``: np.savez / np.savez_compressed."""
    before = ctx.col.fail_count()
    ctx.tensors += scan_npz(ctx, z.members, member)
    if ctx.col.fail_count() == before:
        from ..inert import Inert
        from ..scan import _inert

        _inert(ctx, Inert("numpy arrays (.npz)", end), start, end, member, [])
    return "npz"


def scan_stacked(ctx: _Ctx, start: int, end: int, member: str | None, base: int) -> None:
    """Bytes after a pickle: each further pickle there (a loader that reads on runs it) is
    scanned, so what it imports is named, with its member and offset."""
    pos = start
    for _ in range(16):
        if end - pos < 1 or not parses_as_pickle(ctx, pos, end):
            return
        res = scan_pickle(
            ctx.buf,
            pos,
            end,
            ctx.col,
            _lenient_rules(ctx.allowlist),
            ctx.limits,
            member=member,
            base=base,
        )
        ctx.add_globals(res.globals)
        if not res.complete or res.end <= pos:
            return
        if res.file_end > res.end:  # a frame ran past STOP: a file reader resumes after it
            scan_stacked(ctx, res.file_end, end, member, base)
        pos = res.end


def _plain_dict(v: Any) -> bool:
    return isinstance(v, Container) and v.kind == "dict"


def _pairs(v: Container) -> list[tuple[Any, Any]]:
    return list(zip(v.items[::2], v.items[1::2], strict=True))


def scan_plain_pickle(ctx: _Ctx, start: int, end: int, member: str | None = None) -> str:
    """A pickle that is not a torch.save file: one stream, then end of file."""
    from ..numpy_pickle import KIND, scan_numpy_pickle

    if member is None and scan_numpy_pickle(ctx, start, end):
        return KIND
    col = ctx.col
    rules: PickleRules = make_rules("plain", ctx.allowlist, None)
    rules.persistent_load = None
    rules.what = "torch.save"
    res = scan_pickle(ctx.buf, start, end, col, rules, ctx.limits, member=member, base=start)
    ctx.add_globals(res.globals)
    ctx.tensors += res.tensors
    if res.complete:
        if res.end != end:
            col.add(
                "security.pickle",
                "trailing-data",
                f"{end - res.end} bytes after the pickle's STOP (stacked pickle or appended data)",
                member=member,
                offset=res.end - start,
            )
            scan_stacked(ctx, res.end, end, member, start)
            if res.file_end > res.end:
                scan_stacked(ctx, res.file_end, end, member, start)
        col.add(
            "security.container",
            "not-torch",
            "plain pickle, not a torch.save file: torch.load(weights_only=True) cannot load it",
            member=member,
        )
    return "pickle"


# --------------------------------------------------------------------------- tar


def scan_tar(ctx: _Ctx) -> str:
    col = ctx.col
    col.add(
        "security.container",
        "legacy-tar",
        "legacy tar checkpoint (torch < 0.1.10): torch.load(weights_only=True) refuses this "
        "format; re-save it with a current torch",
    )
    try:
        fobj = ctx.fileobj()
        with tarfile.open(fileobj=fobj, mode="r:") as tar:
            members = tar.getmembers()
            for m in members[: ctx.limits.max_members]:
                if m.name in ("pickle", "sys_info") and m.isreg():
                    off = m.offset_data
                    rules = make_rules("torch", ctx.allowlist, None)
                    rules.persistent_load = lambda pid, off: OPAQUE
                    res = scan_pickle(
                        ctx.buf, off, off + m.size, col, rules, ctx.limits, member=m.name
                    )
                    ctx.add_globals(res.globals)
                elif m.name not in ("storages", "tensors"):
                    col.add(
                        "security.container",
                        "member-name",
                        f"unexpected tar member {m.name!r}",
                        name=m.name,
                    )
    except (tarfile.TarError, OSError, ValueError) as e:
        col.add("security.format", "tar", f"unreadable tar archive: {e}", verdict=UNVERIFIABLE)
    return "torch-tar"
