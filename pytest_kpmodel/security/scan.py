"""Entry point of the static scanner: classify a file by its content and check it whole.

Nothing here unpickles, imports from, or executes the file: pickles are read by the symbolic
machine in :mod:`.pickle_scan`, archives by :mod:`.zip_scan`. Files are memory-mapped; tensor
bytes are never parsed, only CRC-checked (zip) and size-checked.

API (for the plugin, the CLI and the loading helper)::

    scan_path(path, *, extra_globals=(), allow_code=False, limits=None, allowlists=()) -> ScanReport
    scan_paths(paths, *, extra_globals=(), allow_code=False, limits=None,
               recursive=True) -> list[ScanReport]
    scan_bytes(data, *, name="<bytes>", folder=None, extra_globals=(), allow_code=False,
               limits=None) -> ScanReport
    detect_kind(path_or_bytes) -> str

``ScanReport`` (see :mod:`.report`): ``.kind``, ``.findings`` (``list[Finding]``),
``.verdict`` in ``{"clean", "unsafe", "unverifiable"}``, ``.ok``, ``.refusal()``,
``.raise_if_unsafe()``, ``.to_json()``.

Kinds, detected from magic bytes only (never the file name): ``torch-zip`` (a torch.save
archive), ``torchscript``, ``torch-export``, ``torch-legacy``, ``torch-tar``, ``safetensors``,
``onnx``, ``pickle`` (a plain pickle), ``zip`` (not a torch archive), ``unknown``, ``empty``,
``missing``; inside folders, files in no weights format are ``other`` (an info finding).
Anything that cannot be parsed is ``unverifiable``, which fails closed like ``unsafe``.

``extra_globals`` extends the pickle allow-list (``"module:name"`` or ``"module.name"``);
each extension is reported as an info finding. ``allow_code`` turns TorchScript/AOTInductor
code and custom ONNX op domains from failures into info findings.
"""

from __future__ import annotations

import io
import mmap
import os
import stat
import struct
import time
from collections.abc import Iterable, Sequence
from typing import Any

from .allowlist import Allowlist
from .containers import (
    is_legacy_torch,
    scan_legacy,
    scan_plain_pickle,
    scan_tar,
    scan_zip,
)
from .onnx_scan import looks_like_onnx, onnx_available, parse_onnx, scan_onnx
from .pickle_scan import make_rules, scan_pickle
from .report import (
    UNSAFE,
    UNVERIFIABLE,
    Collector,
    ScanLimits,
    ScanReport,
    file_identity,
)
from .safetensors_scan import looks_like_safetensors, scan_safetensors
from .zip_scan import EOCD_SIG, LOCAL_SIG, ZIP64_LOC_SIG, find_eocd

WEIGHT_KINDS = ("safetensors", "torch-zip", "torch-legacy")


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


class _Ctx:
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
    ) -> None:
        self.buf, self.size, self.col, self.limits = buf, size, col, limits
        self.allowlist, self.allow_code, self.folder = allowlist, allow_code, folder
        self.explicit = explicit
        self.globals: dict[str, None] = {}
        self.tensors = 0
        self.storages = 0
        self.depth = 0

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
            return _dispatch(self, start, end, label)
        finally:
            self.depth -= 1


def _probe_pickle(ctx: _Ctx, start: int, end: int) -> tuple[bool, list[str]]:
    """Run the pickle machine over the start of a non-pickle file with a scratch collector:
    (parses as a complete pickle, globals it imports before failing)."""
    scratch = Collector("", ScanLimits(max_ops=min(ctx.limits.max_ops, 100_000), max_findings=10))
    res = scan_pickle(
        ctx.buf, start, end, scratch, make_rules("plain", ctx.allowlist), scratch.limits, probe=True
    )
    return res.complete, res.globals


def _polyglot(ctx: _Ctx, start: int, end: int, member: str | None, kind: str) -> None:
    _complete, names = _probe_pickle(ctx, start, end)
    if names:
        ctx.col.add(
            "security.pickle",
            "polyglot",
            f"this {kind} file also parses as a pickle that imports {names[0]} "
            "(a loader that unpickles it would run that)",
            member=member,
            name=names[0],
        )


def _dispatch(ctx: _Ctx, start: int, end: int, member: str | None = None) -> str:
    buf, col = ctx.buf, ctx.col
    n = end - start
    if n == 0:
        if not ctx.explicit and member is None:
            col.add("security.format", "other", "empty file; skipped", severity="info")
            return "other"
        col.add("security.format", "empty", "empty file", verdict=UNVERIFIABLE, member=member)
        return "empty"
    head = buf[start : start + 16]
    if head[:4] in (LOCAL_SIG, EOCD_SIG):
        kind = scan_zip(ctx, start, end, member)
        _polyglot(ctx, start, end, member, "zip")
        return kind
    if member is None and n >= 512 and buf[257:262] == b"ustar":
        kind = scan_tar(ctx)
        _polyglot(ctx, start, end, member, "tar")
        return kind
    if looks_like_safetensors(head, n):
        ctx.tensors += scan_safetensors(
            buf if start == 0 else buf[start:end], n, col, ctx.limits, member
        )
        _polyglot(ctx, start, end, member, "safetensors")
        return "safetensors"
    if is_legacy_torch(head):
        return scan_legacy(ctx, start, end, member)
    if head[0] == 0x80 and n > 1 and head[1] <= 5:
        return scan_plain_pickle(ctx, start, end, member)
    if looks_like_onnx(head, n):
        model = parse_onnx(buf if start == 0 else buf[start:end], n)
        if model is not None:
            ctx.tensors += scan_onnx(
                model, ctx.folder if member is None else None, col, ctx.allow_code, member
            )
            _polyglot(ctx, start, end, member, "onnx")
            return "onnx"
        if not onnx_available():
            col.add(
                "security.format",
                "onnx-missing",
                "looks like ONNX but the onnx package is not installed to check it",
                verdict=UNVERIFIABLE,
                member=member,
            )
            return "onnx"
    # a zip archive with bytes prepended (polyglot): the end record is there, the start is not
    eocd = find_eocd(buf, end)
    if eocd >= start and eocd + 22 <= end:
        cd_size, cd_off = struct.unpack_from("<II", buf, eocd + 12)
        cd_end = eocd
        if eocd - 76 >= start and buf[eocd - 20 : eocd - 16] == ZIP64_LOC_SIG:
            cd_end = eocd - 76
            cd_size, cd_off = struct.unpack_from("<QQ", buf, cd_end + 40)
        prefix = (cd_end - start) - (cd_off + cd_size)
        if 0 < prefix < n and buf[start + prefix : start + prefix + 4] == LOCAL_SIG:
            col.add(
                "security.zip",
                "prepended-data",
                f"zip archive with {prefix} bytes prepended (polyglot)",
                member=member,
                offset=0,
            )
            _polyglot(ctx, start, end, member, "zip")
            ctx.nested(start + prefix, end, (member + "!" if member else "") + f"@{prefix}")
            return "zip"
    complete, names = _probe_pickle(ctx, start, end)
    if complete or names:
        return scan_plain_pickle(ctx, start, end, member)
    if ctx.explicit or member is not None:
        col.add(
            "security.format",
            "unknown",
            "unrecognised format (not safetensors, a torch archive, ONNX or a pickle)",
            verdict=UNVERIFIABLE,
            member=member,
        )
        return "unknown"
    col.add("security.format", "other", "not a weights format; skipped", severity="info")
    return "other"


def _report_extensions(col: Collector, allowlist: Allowlist, report: ScanReport) -> None:
    used = set(report.globals)
    for e in allowlist.extra:
        col.add(
            "security.allowlist",
            "extra-global",
            f"allow-list extended by the caller with {e.full}"
            f" ({'used' if e.full in used else 'not used'} by this file)",
            severity="info",
            name=e.full,
        )


def _report_profiles(col: Collector, allowlist: Allowlist, report: ScanReport) -> None:
    """Say which opt-in profiles were used, and which one would accept a refused file."""
    from .allowlist import PROFILES, profile_entries

    for name in allowlist.profiles:
        col.add(
            "security.allowlist",
            "profile",
            f"allow-list extended with the reviewed {name!r} profile",
            severity="info",
            name=name,
        )
    denied = [g for g in report.globals if allowlist.lookup(*g.rsplit(".", 1)) is None]
    if not denied:
        return
    for name in PROFILES:
        if name in allowlist.profiles:
            continue
        listed = {e.full for e in profile_entries(name)}
        if set(denied) <= listed:
            col.add(
                "security.allowlist",
                "profile-hint",
                f"all {len(denied)} globals outside the default allow-list are on the reviewed "
                f"{name!r} allow-list ({', '.join(denied)}); opt in with the card key [model] "
                f'allowlist = "{name}" or kp_security(allowlist=["{name}"])',
                severity="info",
                name=name,
            )


def _finish(ctx: _Ctx, report: ScanReport, t0: float) -> ScanReport:
    report.globals = list(ctx.globals)
    report.tensors = ctx.tensors
    report.storages = ctx.storages
    _report_extensions(ctx.col, ctx.allowlist, report)
    _report_profiles(ctx.col, ctx.allowlist, report)
    report.findings = ctx.col.finish()
    report.duration_s = time.perf_counter() - t0
    return report


def scan_bytes(
    data: bytes,
    *,
    name: str = "<bytes>",
    folder: str | None = None,
    extra_globals: Iterable[str | tuple[str, str]] = (),
    allow_code: bool = False,
    limits: ScanLimits | None = None,
    allowlists: Iterable[str] = (),
) -> ScanReport:
    """Scan in-memory bytes (``folder``: where ONNX external data would live)."""
    t0 = time.perf_counter()
    limits = limits or ScanLimits()
    data = bytes(data)
    col = Collector(name, limits)
    allowlist = Allowlist(extra_globals, profiles=allowlists)
    ctx = _Ctx(data, len(data), col, limits, allowlist, allow_code, folder, True)
    report = ScanReport(path=name, kind="unknown", size=len(data))
    report.kind = _guarded_dispatch(ctx)
    return _finish(ctx, report, t0)


def _guarded_dispatch(ctx: _Ctx) -> str:
    try:
        return _dispatch(ctx, 0, ctx.size)
    except (MemoryError, RecursionError) as e:
        ctx.col.add(
            "security.limits",
            "resources",
            f"scan ran out of resources: {type(e).__name__}",
            verdict=UNVERIFIABLE,
        )
        return "unknown"
    except (struct.error, IndexError, KeyError, ValueError, OverflowError, TypeError) as e:
        # a structure the parsers did not anticipate: fail closed (the fuzz tests assert this
        # never happens on their inputs)
        ctx.col.add(
            "security.format",
            "internal-error",
            f"malformed structure the scanner cannot follow ({type(e).__name__}: {e})",
            verdict=UNVERIFIABLE,
        )
        return "unknown"


def scan_path(
    path: str | os.PathLike[str],
    *,
    extra_globals: Iterable[str | tuple[str, str]] = (),
    allow_code: bool = False,
    limits: ScanLimits | None = None,
    _explicit: bool = True,
    allowlists: Iterable[str] = (),
) -> ScanReport:
    """Scan one file (symlinks are followed; the file is memory-mapped, never loaded).
    ``allowlists``: opt-in profiles (``allowlist.PROFILES``) added to the default list."""
    t0 = time.perf_counter()
    limits = limits or ScanLimits()
    p = os.fspath(path)
    col = Collector(p, limits)
    allowlist = Allowlist(extra_globals, profiles=allowlists)
    report = ScanReport(path=p, kind="missing")
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer (it is refused below)
        fd = os.open(p, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NONBLOCK", 0))
    except OSError as e:
        col.add(
            "security.format", "unreadable", f"cannot open: {e.strerror or e}", verdict=UNVERIFIABLE
        )
        report.findings = col.finish()
        return report
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        report.identity = file_identity(st)
        report.size = st.st_size
        if not stat.S_ISREG(st.st_mode):
            col.add("security.format", "not-a-file", "not a regular file", verdict=UNVERIFIABLE)
            report.kind = "not-a-file"
            report.findings = col.finish()
            return report
        mm: Any = b""
        if st.st_size:
            mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
            if hasattr(mm, "madvise") and hasattr(mmap, "MADV_SEQUENTIAL"):
                mm.madvise(mmap.MADV_SEQUENTIAL)
        try:
            ctx = _Ctx(
                mm,
                st.st_size,
                col,
                limits,
                allowlist,
                allow_code,
                os.path.dirname(os.path.abspath(p)),
                _explicit,
            )
            report.kind = _guarded_dispatch(ctx)
            return _finish(ctx, report, t0)
        finally:
            if st.st_size:
                mm.close()


def scan_paths(
    paths: Sequence[str | os.PathLike[str]] | str | os.PathLike[str],
    *,
    extra_globals: Iterable[str | tuple[str, str]] = (),
    allow_code: bool = False,
    limits: ScanLimits | None = None,
    recursive: bool = True,
    allowlists: Iterable[str] = (),
) -> list[ScanReport]:
    """Scan files and folders. Files named explicitly must be in a known format; inside a
    folder, files in no weights format are reported as ``other`` (info) - but anything that
    parses as a pickle, archive, safetensors or ONNX is scanned whatever its name."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    extra = list(extra_globals)
    out: list[ScanReport] = []
    for path in paths:
        p = os.fspath(path)
        if os.path.isdir(p):
            for root, dirs, files in os.walk(p):
                dirs.sort()
                if not recursive:
                    dirs[:] = []
                for fn in sorted(files):
                    fp = os.path.join(root, fn)
                    if os.path.islink(fp) and not os.path.isfile(fp):
                        continue
                    out.append(
                        scan_path(
                            fp,
                            extra_globals=extra,
                            allow_code=allow_code,
                            limits=limits,
                            _explicit=False,
                            allowlists=allowlists,
                        )
                    )
        else:
            out.append(
                scan_path(
                    p,
                    extra_globals=extra,
                    allow_code=allow_code,
                    limits=limits,
                    allowlists=allowlists,
                )
            )
    return out


def detect_kind(source: str | os.PathLike[str] | bytes) -> str:
    """The format of a file or bytes from magic bytes alone (no full scan)."""
    if isinstance(source, (bytes, bytearray)):
        head, size = bytes(source[:16]), len(source)
        tar = size >= 512 and source[257:262] == b"ustar"
    else:
        try:
            with open(source, "rb") as f:
                head = f.read(512)
                size = os.fstat(f.fileno()).st_size
        except OSError:
            return "missing"
        tar = len(head) >= 262 and head[257:262] == b"ustar"
        head = head[:16]
    if size == 0:
        return "empty"
    if head[:4] in (LOCAL_SIG, EOCD_SIG):
        return "zip"
    if tar:
        return "torch-tar"
    if looks_like_safetensors(head, size):
        return "safetensors"
    if is_legacy_torch(head):
        return "torch-legacy"
    if head[0] == 0x80 and size > 1 and head[1] <= 5:
        return "pickle"
    if looks_like_onnx(head, size):
        return "onnx"
    return "unknown"


__all__ = [
    "scan_path",
    "scan_paths",
    "scan_bytes",
    "detect_kind",
    "ScanReport",
    "ScanLimits",
    "UNSAFE",
    "UNVERIFIABLE",
    "WEIGHT_KINDS",
]
