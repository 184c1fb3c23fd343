"""Pickles outside torch's own structure: a plain pickle file, and the pickles that hide after
another one or after the end of a container (a loader that reads on runs them), scanned so
that what they import is named, with its member and offset.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..numpy_pickle import KIND, scan_numpy_pickle
from ..pickle_scan import OPAQUE, PickleRules, make_rules, scan_pickle
from ..report import Collector, ScanLimits

if TYPE_CHECKING:
    from ..allowlist import Allowlist
    from ..context import ScanContext


def lenient_rules(allowlist: Allowlist) -> PickleRules:
    """Torch rules whose persistent ids are accepted unchecked: for pickles that are already
    a finding (stacked, hidden), where only what they import and call matters."""
    rules = make_rules("torch", allowlist, None)
    rules.persistent_load = lambda pid, off: OPAQUE
    return rules


def parses_as_pickle(ctx: ScanContext, start: int, end: int, buf: Any = None) -> bool:
    """Whether CPython's unpickler would get anywhere with ``buf[start:end]`` (default: the
    file): it parses to STOP, or imports something before failing (probed with a scratch
    collector)."""
    lim = ScanLimits(max_ops=min(ctx.limits.max_ops, 100_000), max_findings=10)
    scratch = Collector("", lim)
    b = ctx.buf if buf is None else buf
    res = scan_pickle(b, start, end, scratch, lenient_rules(ctx.allowlist), lim, probe=True)
    return res.complete or bool(res.globals)


def scan_stacked(ctx: ScanContext, start: int, end: int, member: str | None, base: int) -> None:
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
            lenient_rules(ctx.allowlist),
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


def trailing_data(
    ctx: ScanContext, check: str, why: str, pos: int, end: int, member: str | None, base: int
) -> None:
    """Bytes from ``pos`` to ``end`` after the end of a structure: a ``trailing-data`` finding
    (offset relative to ``base``), and every pickle there is scanned."""
    ctx.col.add(check, "trailing-data", why, member=member, offset=pos - base)
    scan_stacked(ctx, pos, end, member, base)


def scan_plain_pickle(ctx: ScanContext, start: int, end: int, member: str | None = None) -> str:
    """A pickle that is not a torch.save file: one stream, then end of file."""
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
            trailing_data(
                ctx,
                "security.pickle",
                f"{end - res.end} bytes after the pickle's STOP (stacked pickle or appended data)",
                res.end,
                end,
                member,
                start,
            )
            if res.file_end > res.end:
                scan_stacked(ctx, res.file_end, end, member, start)
        col.add(
            "security.container",
            "not-torch",
            "plain pickle, not a torch.save file: torch.load(weights_only=True) cannot load it",
            member=member,
        )
    return "pickle"
