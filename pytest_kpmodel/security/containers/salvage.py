"""Archives that are already a finding (their structure cannot be trusted, or members torch
never writes): every member that holds a pickle or an archive is still scanned, leniently, so
that what it imports is named.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING, Any

from ..numpy_scan import inflate_member
from ..pickle_scan import scan_pickle
from ..zip_scan import CENTRAL_SIG, EOCD_SIG, LOCAL_SIG, Member
from .pickles import lenient_rules, parses_as_pickle, scan_stacked

if TYPE_CHECKING:
    from ..context import ScanContext


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


def salvage(ctx: ScanContext, members: list[Member], outer: str | None) -> None:
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
                buf, s, e, ctx.col, lenient_rules(ctx.allowlist), ctx.limits, member=label
            )
            ctx.add_globals(res.globals)
            if res.complete and res.end < e and buf is ctx.buf:
                scan_stacked(ctx, res.end, e, label, s)
