"""Entry point of the static scanner: classify a file by its content and check it whole.

Nothing here unpickles, imports from, or executes the file: :mod:`.dispatch` picks the scanner
by content; pickles are read by the symbolic machine in :mod:`.pickle_scan`, archives by
:mod:`.zip_scan` and :mod:`.containers`. Files are memory-mapped; tensor
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

import mmap
import os
import stat
import struct
import time
from collections.abc import Iterable, Sequence
from typing import Any

from .allowlist import Allowlist
from .containers.legacy import is_legacy_torch
from .context import ScanContext
from .dispatch import dispatch
from .onnx_scan import looks_like_onnx
from .report import (
    UNSAFE,
    UNVERIFIABLE,
    Collector,
    ScanLimits,
    ScanReport,
    file_identity,
)
from .safetensors_scan import looks_like_safetensors
from .zip_scan import EOCD_SIG, LOCAL_SIG

WEIGHT_KINDS = ("safetensors", "torch-zip", "torch-legacy")


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


def _finish(ctx: ScanContext, report: ScanReport, t0: float) -> ScanReport:
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
    ctx = ScanContext(data, len(data), col, limits, allowlist, allow_code, folder, True, dispatch)
    report = ScanReport(path=name, kind="unknown", size=len(data))
    report.kind = _guarded_dispatch(ctx)
    return _finish(ctx, report, t0)


def _guarded_dispatch(ctx: ScanContext) -> str:
    try:
        return dispatch(ctx, 0, ctx.size)
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
            ctx = ScanContext(
                mm,
                st.st_size,
                col,
                limits,
                allowlist,
                allow_code,
                os.path.dirname(os.path.abspath(p)),
                _explicit,
                dispatch,
            )
            ctx.name = os.path.basename(p)
            report.kind = _guarded_dispatch(ctx)
            report.covers = list(ctx.covered)
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
    """Scan files and folders. A file named explicitly must be a weights format. Inside a
    folder every file is scanned by content (see :func:`scan_folder`)."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    extra = list(extra_globals)
    out: list[ScanReport] = []
    for path in paths:
        p = os.fspath(path)
        if os.path.isdir(p):
            out += scan_folder(
                p,
                extra_globals=extra,
                allow_code=allow_code,
                limits=limits,
                recursive=recursive,
                allowlists=allowlists,
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


def _refused(path: str, code: str, why: str) -> ScanReport:
    col = Collector(path, ScanLimits())
    col.add("security.format", code, why)
    return ScanReport(path=path, kind="not-a-file", findings=col.finish())


def scan_folder(
    folder: str | os.PathLike[str],
    *,
    extra_globals: Iterable[str | tuple[str, str]] = (),
    allow_code: bool = False,
    limits: ScanLimits | None = None,
    recursive: bool = True,
    allowlists: Iterable[str] = (),
    skip: Iterable[str | os.PathLike[str]] = (),
) -> list[ScanReport]:
    """One report per file in ``folder`` (recursively), nothing skipped silently.

    Each file is scanned by content, whatever its name: weights formats as such; inert data
    (JSON, TOML, text, images, TensorBoard event files, numeric numpy arrays) is clean (an
    ``info`` finding says what it is); everything else - an unknown binary, an archive that is
    not a torch file, a broken symlink, a symlinked folder (not followed), a FIFO - fails as
    ``unverifiable`` or ``unsupported``. The external data files of an ONNX model in the
    folder are covered by that model's scan (its tensor ranges are checked against them).
    ``skip``: files already scanned by the caller (the card's weights).
    """
    extra = list(extra_globals)
    skipped = {os.path.realpath(os.fspath(x)) for x in skip}
    out: list[ScanReport] = []
    for root, dirs, files in os.walk(os.fspath(folder)):
        dirs.sort()
        for d in list(dirs):
            if os.path.islink(os.path.join(root, d)):
                dirs.remove(d)
                out.append(
                    _refused(
                        os.path.join(root, d),
                        "not-a-file",
                        "symlinked folder: not followed, so its files are not verified",
                    )
                )
        if not recursive:
            for d in dirs:
                out.append(
                    _refused(
                        os.path.join(root, d),
                        "not-a-file",
                        "subfolder not scanned (--no-recursive): its files are not verified",
                    )
                )
            dirs[:] = []
        for fn in sorted(files):
            fp = os.path.join(root, fn)
            if os.path.realpath(fp) in skipped:
                continue
            if os.path.islink(fp) and not os.path.exists(fp):
                out.append(_refused(fp, "unreadable", "broken symlink"))
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
    covered = {c for r in out for c in r.covers}
    for i, r in enumerate(out):
        if r.kind == "unknown" and os.path.realpath(r.path) in covered:
            out[i] = _external_data(r)
    return out


def _external_data(r: ScanReport) -> ScanReport:
    """An unrecognised file that an ONNX model in the folder names as its external data."""
    col = Collector(r.path, ScanLimits())
    col.add(
        "security.format",
        "inert",
        "raw tensor bytes: external data of an ONNX model in this folder (its offsets and "
        "lengths were checked by that model's scan)",
        severity="info",
    )
    return ScanReport(
        path=r.path, kind="onnx-external-data", findings=col.finish(), size=r.size,
        identity=r.identity, duration_s=r.duration_s,
    )  # fmt: skip


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
