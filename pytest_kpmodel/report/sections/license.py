"""License & dependencies: ``kp_license`` and ``kp_dependencies`` checks, and the policy,
SBOM, licenses and dependencies data when the report has them."""

from __future__ import annotations

from collections.abc import Mapping

from ..markup import esc, generic
from ..page import Page
from ..verdicts import check_block, checks_for


def render(page: Page) -> str:
    checks = checks_for(page.report, "license")
    extra = []
    for key in ("policy", "sbom", "licenses", "dependencies"):
        val = page.report.get(key)
        if isinstance(val, Mapping) and val:
            extra.append(f"<h3>{esc(key)}</h3>" + generic(val))
    if not checks and not extra:
        return ""
    return "".join(check_block(c) for c in checks) + "".join(extra)
