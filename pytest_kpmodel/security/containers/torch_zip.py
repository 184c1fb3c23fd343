"""Zip archives: ``torch.save`` files (since torch 1.6), TorchScript archives, torch.export
archives and numpy ``.npz`` files, after the strict zip structure check of :mod:`..zip_scan`.

A ``torch.save`` archive has one top folder and only the member names torch writes::

    <top>/data.pkl  <top>/data/<key>  <top>/version  <top>/byteorder  <top>/.format_version
    <top>/.storage_alignment  <top>/.data/serialization_id  <top>/.data/version

its small metadata members have the expected content, no member is itself an archive, and the
tensor records in ``data.pkl`` match the archive: each persistent id's storage key has a
``data/<key>`` member of exactly ``numel * element_size`` bytes, every data member is
referenced, and every tensor's offset/size/stride stays inside its storage.

TorchScript archives (``code/``, ``constants.pkl``) carry code that ``torch.jit.load`` compiles
and runs: a ``security.code`` finding unless the caller allows code.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from ..allowlist import Allowed, Allowlist
from ..inert import Inert, report_inert
from ..numpy_scan import inflate_member, scan_npz
from ..pickle_scan import StorageTable, make_rules, scan_pickle
from ..zip_scan import EOCD_SIG, LOCAL_SIG, Member, ZipInfo, check_crcs, read_zip
from .pickles import parses_as_pickle, scan_stacked, trailing_data
from .pt2 import scan_pt2
from .salvage import local_members, salvage

if TYPE_CHECKING:
    from ..context import ScanContext

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


def scan_zip(ctx: ScanContext, start: int, end: int, member: str | None = None) -> str:
    """Scan the zip archive at ``buf[start:end]``; returns the detected kind."""
    z: ZipInfo = read_zip(ctx.buf, start, end, ctx.col, member, ctx.limits.max_members)
    if z.appended is not None:  # a loader that finds the last end record may read it
        a, b = z.appended
        if parses_as_pickle(ctx, a, b):
            scan_stacked(ctx, a, b, member, start)
        elif ctx.buf[a : a + 4] in (LOCAL_SIG, EOCD_SIG):
            ctx.nested(a, b, (member + "!" if member else "") + f"@{a - start}")
    if not z.ok:
        # the layout cannot be trusted: still scan every member a local header announces
        salvage(ctx, local_members(ctx.buf, start, end, ctx.limits.max_members), member)
        return "zip"
    check_crcs(ctx.buf, z.members, ctx.col, member)
    names = [m.name for m in z.members]
    if names and all(n.endswith(".npy") for n in names):
        return _scan_npz(ctx, z, start, end, member)
    found = _torch_layout(ctx, z, member)
    if found is None:
        return "zip"
    kind, top, rel = found
    _check_metadata(ctx, rel, member)
    _check_compression(ctx, kind, rel, member)
    if kind == "torch-export":
        scan_pt2(ctx, rel, member)
        return kind
    salvage(ctx, _unexpected_members(ctx, kind, rel, member), member)
    if kind == "torchscript":
        _scan_torchscript(ctx, rel, top, member)
        return kind
    _scan_data_pickle(ctx, rel, top, "data.pkl", "data/", ctx.allowlist, member)
    return kind


def _torch_layout(
    ctx: ScanContext, z: ZipInfo, member: str | None
) -> tuple[str, str, dict[str, Member]] | None:
    """(kind, top folder, members by their name below it) of a torch archive; None (after a
    finding, and the members salvaged) for any other zip."""
    names = [m.name for m in z.members]
    tops = {n.split("/", 1)[0] for n in names}
    if len(tops) != 1 or any("/" not in n for n in names):
        ctx.col.add(
            "security.container",
            "top-folder",
            f"archive members are not all inside one top folder ({sorted(tops)[:5]})",
            member=member,
        )
        salvage(ctx, z.members, member)
        return None
    top = tops.pop()
    rel = {n[len(top) + 1 :]: m for n, m in zip(names, z.members, strict=True)}
    if any(r.startswith("code/") for r in rel) or "constants.pkl" in rel:
        return "torchscript", top, rel
    if "archive_format" in rel or any(r.startswith("models/") for r in rel):
        return "torch-export", top, rel
    if "data.pkl" in rel:
        return "torch-zip", top, rel
    ctx.col.add(
        "security.container",
        "no-data-pkl",
        f"zip archive without {top}/data.pkl is not a torch file",
        member=member,
    )
    salvage(ctx, z.members, member)
    return None


def _check_metadata(ctx: ScanContext, rel: dict[str, Member], member: str | None) -> None:
    for r, rx in _META.items():
        if r in rel:
            m = rel[r]
            if m.size > 128 or not rx.match(ctx.buf[m.data_offset : m.data_offset + m.size]):
                ctx.col.add(
                    "security.container",
                    "metadata",
                    f"member {m.name!r} has unexpected content",
                    member=member,
                    name=m.name,
                )


def _check_compression(
    ctx: ScanContext, kind: str, rel: dict[str, Member], member: str | None
) -> None:
    """torch stores every member; only TorchScript deflates its code and extras."""
    for r, m in rel.items():
        deflate_ok = kind == "torchscript" and (r.startswith(("code/", "extra/")))
        if m.method != 0 and not (m.method == 8 and deflate_ok):
            ctx.col.add(
                "security.zip",
                "compressed",
                f"member {m.name!r} is compressed (method {m.method}); torch stores it "
                "uncompressed",
                member=member,
                name=m.name,
            )


def _unexpected_members(
    ctx: ScanContext, kind: str, rel: dict[str, Member], member: str | None
) -> list[Member]:
    """Members torch does not write, and members that are archives themselves: findings,
    returned to be salvaged."""
    allowed_name = (
        (lambda r: bool(_TS_ALLOWED.match(r)))
        if kind == "torchscript"
        else (lambda r: r == "data.pkl" or r in _META or bool(_DATA.match(r)))
    )
    unexpected = []
    for r, m in rel.items():
        if not allowed_name(r):
            ctx.col.add(
                "security.container",
                "member-name",
                f"unexpected member {m.name!r}; torch.save does not write it",
                member=member,
                name=m.name,
            )
            unexpected.append(m)
    for m in rel.values():
        if m.size >= 4 and ctx.buf[m.data_offset : m.data_offset + 4] in (LOCAL_SIG, EOCD_SIG):
            ctx.col.add(
                "security.container",
                "nested-archive",
                f"member {m.name!r} is itself a zip archive",
                member=member,
                name=m.name,
            )
            if m not in unexpected:
                unexpected.append(m)
    return unexpected


def _scan_torchscript(
    ctx: ScanContext, rel: dict[str, Member], top: str, member: str | None
) -> None:
    code = sorted(r for r in rel if r.startswith("code/"))
    if ctx.allow_code:
        where = f"{member}!" if member else ""
        ctx.col.add(
            "security.code",
            "torchscript",
            f"{where}TorchScript archive with {len(code)} code files (allowed: code=True)",
            severity="info",
            member=member,
        )
    else:
        ctx.col.add(
            "security.code",
            "torchscript",
            f"TorchScript archive: torch.jit.load compiles and runs its {len(code)} code "
            "files (allow with code=True / --allow-code)",
            member=member,
        )
    allow: Allowlist = _TorchScriptAllowlist(ctx.allowlist)
    for pkl, prefix in (("data.pkl", "data/"), ("constants.pkl", "constants/")):
        if pkl in rel:
            _scan_data_pickle(ctx, rel, top, pkl, prefix, allow, member)


def _scan_data_pickle(
    ctx: ScanContext,
    rel: dict[str, Member],
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
        trailing_data(
            ctx,
            "security.pickle",
            f"{m.data_offset + m.size - res.end} bytes after the pickle's STOP (a second, "
            "hidden pickle or padding)",
            res.end,
            m.data_offset + m.size,
            label,
            m.data_offset,
        )
    if res.complete:
        _check_storages(ctx, rel, top, pkl, prefix, table, label, outer)


def _check_storages(
    ctx: ScanContext,
    rel: dict[str, Member],
    top: str,
    pkl: str,
    prefix: str,
    table: StorageTable,
    label: str,
    outer: str | None,
) -> None:
    """The storages the pickle names against the archive's data members."""
    col = ctx.col
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


def _scan_npz(ctx: ScanContext, z: ZipInfo, start: int, end: int, member: str | None) -> str:
    """A zip whose members are all ``.npy``: np.savez / np.savez_compressed."""
    before = ctx.col.fail_count()
    ctx.tensors += scan_npz(ctx, z.members, member)
    if ctx.col.fail_count() == before:
        report_inert(ctx, Inert("numpy arrays (.npz)", end), start, end, member, [])
    return "npz"
