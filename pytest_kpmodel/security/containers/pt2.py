"""torch.export archives (``archive_format``, ``models/``), checked member by member: only the
names torch.export writes, JSON that parses, pickled members and nested torch files scanned
in full (``torch.export.load`` reads some with ``weights_only=False``), and AOTInductor shared
objects reported as code.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING

from ..report import UNVERIFIABLE
from ..zip_scan import EOCD_SIG, LOCAL_SIG, Member

if TYPE_CHECKING:
    from ..context import ScanContext

_PT2_ALLOWED = re.compile(
    r"^(archive_format|archive_version|version|byteorder|\.data/version|\.data/serialization_id|"
    r"models/[^/]+\.json|data/weights/[^/]+|data/constants/[^/]+|data/sample_inputs/[^/]+|"
    r"extra/.+|data/aotinductor/.+)$"
)


def scan_pt2(ctx: ScanContext, rel: dict[str, Member], outer: str | None) -> None:
    """``rel``: the archive's members by their name below the top folder."""
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
            _check_json(ctx, m, outer)
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


def _check_json(ctx: ScanContext, m: Member, outer: str | None) -> None:
    if m.size > 256 << 20:
        ctx.col.add(
            "security.limits",
            "json-size",
            f"{m.name!r} is too large to check",
            verdict=UNVERIFIABLE,
            member=outer,
        )
        return
    try:
        json.loads(ctx.buf[m.data_offset : m.data_offset + m.size])
    except (ValueError, RecursionError):
        ctx.col.add(
            "security.container",
            "json",
            f"{m.name!r} is not valid JSON",
            member=outer,
            name=m.name,
        )
