"""Legacy tar checkpoints (torch < 0.1.10): ``torch.load(weights_only=True)`` refuses the
format, so they are always a finding; their pickles are still scanned, so what they import is
named.
"""

from __future__ import annotations

import tarfile
from typing import TYPE_CHECKING

from ..pickle_scan import scan_pickle
from ..report import UNVERIFIABLE
from .pickles import lenient_rules

if TYPE_CHECKING:
    from ..context import ScanContext


def scan_tar(ctx: ScanContext) -> str:
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
                    res = scan_pickle(
                        ctx.buf,
                        off,
                        off + m.size,
                        col,
                        lenient_rules(ctx.allowlist),
                        ctx.limits,
                        member=m.name,
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
