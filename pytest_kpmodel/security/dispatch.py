"""Which scanner reads a file (or an archive member): the format is told by its content alone,
never by its name, and anything in no weights format is checked for what a loader could still
do with it (a pickle hiding in it, code, trailing data).

:func:`dispatch` is what :class:`.context.ScanContext` calls for the file and for every nested
archive; :mod:`.scan` builds the context and turns the result into a report.
"""

from __future__ import annotations

from .containers.legacy import is_legacy_torch, scan_legacy
from .containers.pickles import scan_plain_pickle, trailing_data
from .containers.tar import scan_tar
from .containers.torch_zip import scan_zip
from .context import ScanContext
from .inert import PICKLE_SUFFIXES, Inert, binary_code, classify, code_by_name, report_inert
from .numpy_scan import looks_like_npy, scan_npy
from .onnx_scan import looks_like_onnx, onnx_available, parse_onnx, scan_onnx
from .pickle_scan import make_rules, scan_pickle
from .report import UNSAFE, UNVERIFIABLE, Collector, ScanLimits
from .safetensors_scan import looks_like_safetensors, scan_safetensors
from .zip_scan import EOCD_SIG, LOCAL_SIG, prepended_bytes


def dispatch(ctx: ScanContext, start: int, end: int, member: str | None = None) -> str:
    """Scan ``ctx.buf[start:end]`` with the scanner its content calls for; returns its kind."""
    buf, col = ctx.buf, ctx.col
    n = end - start
    if n == 0:
        if not ctx.explicit and member is None:
            col.add("security.format", "inert", "empty file", severity="info")
            return "empty"
        col.add("security.format", "empty", "empty file", member=member)
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
    if looks_like_npy(head):
        return _npy(ctx, start, end, member)
    if looks_like_onnx(head, n) and _onnx(ctx, start, end, member):
        return "onnx"
    # a zip archive with bytes prepended (polyglot): the end record is there, the start is not
    prefix = prepended_bytes(buf, start, end)
    if prefix:
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
    return _no_container(ctx, start, end, member)


def _npy(ctx: ScanContext, start: int, end: int, member: str | None) -> str:
    names: list[str] = []
    arrays, stop = scan_npy(ctx.buf, start, end, ctx.col, ctx.limits, ctx.allowlist, member, names)
    ctx.add_globals(names)
    if stop < end:
        trailing_data(
            ctx,
            "security.numpy",
            f"{end - stop} bytes after the array data (np.load ignores them)",
            stop,
            end,
            member,
            start,
        )
    if arrays and not ctx.col.fail_count():
        report_inert(ctx, Inert("numpy array", end), start, end, member, [])
    return "npy"


def _onnx(ctx: ScanContext, start: int, end: int, member: str | None) -> bool:
    """Scan an ONNX model (False: it does not parse as one, so it is something else)."""
    n = end - start
    model = parse_onnx(ctx.buf if start == 0 else ctx.buf[start:end], n)
    if model is not None:
        ctx.tensors += scan_onnx(
            model,
            ctx.folder if member is None else None,
            ctx.col,
            ctx.allow_code,
            member,
            covered=ctx.covered,
        )
        _polyglot(ctx, start, end, member, "onnx")
        return True
    if not onnx_available():
        ctx.col.add(
            "security.format",
            "onnx-missing",
            "looks like ONNX but the onnx package is not installed to check it",
            verdict=UNVERIFIABLE,
            member=member,
        )
        return True
    return False


def _no_container(ctx: ScanContext, start: int, end: int, member: str | None) -> str:
    """Content in no weights format: a pickle after all, inert data, code, or unknown."""
    col = ctx.col
    complete, names, calls = _probe_pickle(ctx, start, end)
    name = ctx.name if member is None else member
    inert = classify(ctx.buf, start, end, name)
    # text that merely starts like a protocol-0 pickle ("cat\ndog\n": GLOBAL cat.dog, then the
    # end) stays text - unless its name says a loader unpickles it; one that parses to STOP or
    # reaches a call is a pickle
    pickle_named = name.lower().endswith(PICKLE_SUFFIXES)
    if complete or calls or (names and (inert is None or pickle_named)):
        return scan_plain_pickle(ctx, start, end, member)
    if inert is not None:
        return report_inert(ctx, inert, start, end, member, names)
    if binary_code(bytes(ctx.buf[start : start + 16])) or code_by_name(name):
        col.add(
            "security.code",
            "binary-code",
            "an executable, shared library or compiled module (code)",
            severity="info" if ctx.allow_code else "fail",
            verdict=None if ctx.allow_code else UNSAFE,
            member=member,
        )
        return "code"
    col.add(
        "security.format",
        "unknown",
        "unrecognised content: not weights (safetensors, a torch archive, ONNX, a pickle, "
        "numpy) and not inert data (JSON, TOML, text, PNG/JPEG/GIF/BMP/WebP), so it cannot be "
        "verified",
        member=member,
    )
    return "unknown"


def _probe_pickle(ctx: ScanContext, start: int, end: int) -> tuple[bool, list[str], int]:
    """Run the pickle machine over the start of a non-pickle file with a scratch collector:
    (parses as a complete pickle, globals it imports before failing, calls it reaches)."""
    scratch = Collector("", ScanLimits(max_ops=min(ctx.limits.max_ops, 100_000), max_findings=10))
    res = scan_pickle(
        ctx.buf, start, end, scratch, make_rules("plain", ctx.allowlist), scratch.limits, probe=True
    )
    return res.complete, res.globals, res.calls


def _polyglot(ctx: ScanContext, start: int, end: int, member: str | None, kind: str) -> None:
    _complete, names, _calls = _probe_pickle(ctx, start, end)
    for name in names:
        if ctx.allowlist.lookup(*name.rsplit(".", 1)) is not None:
            continue
        ctx.col.add(
            "security.pickle",
            "polyglot",
            f"this {kind} file also parses as a pickle that imports {name} "
            "(a loader that unpickles it would run that)",
            member=member,
            name=name,
        )
