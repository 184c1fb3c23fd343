"""One report being rendered: its data, its artifact files, and what several sections ask of
both (artifacts per section, the baseline's metrics and name, a section's verdict)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .assets import Assets, section_of
from .markup import as_dict, as_list, esc, figure
from .verdicts import check_status, checks_for, gates_of


class Page:
    def __init__(self, report: Mapping[str, Any], assets: Assets) -> None:
        self.report = report
        self.assets = assets
        self.artifacts = [a for a in as_list(report.get("artifacts")) if isinstance(a, Mapping)]

    def artifacts_for(self, section: str) -> list[Mapping[str, Any]]:
        return [a for a in self.artifacts if section_of(a) == section]

    def artifact_figure(self, a: Mapping[str, Any], caption_extra: str = "") -> str:
        meta = as_dict(a.get("meta"))
        title = esc(a.get("title") or a.get("kind"))
        if a.get("path") is None:
            why = meta.get("skipped") or meta.get("error") or "no image"
            return f'<div class="artifact-note">{title}: {esc(why)}</div>'
        uri, why = self.assets.data_uri(a.get("path"))
        if uri is None:
            return f'<div class="artifact-note">{title}: {esc(why)}</div>'
        return figure(uri, title + caption_extra, alt=str(a.get("title") or a.get("kind")))

    def baseline_metrics(self) -> Mapping[str, Any]:
        r = self.report
        for cand in (as_dict(r.get("baseline")).get("metrics"), r.get("baseline_metrics"),
                     as_dict(r.get("metrics")).get("baseline")):  # fmt: skip
            if isinstance(cand, Mapping) and cand:
                return cand
        return {}

    def baseline_name(self) -> str:
        m = as_dict(as_dict(self.report.get("baseline")).get("model"))
        if m.get("name"):
            return f"{m['name']} {m.get('version', '')}".strip()
        return "baseline"

    def section_status(self, section: str) -> str | None:
        """'fail' / 'pass' / None for the nav: checks and gates that belong to the section."""
        statuses = [check_status(c) for c in checks_for(self.report, section)]
        statuses += ["pass" if g.get("passed") else "fail" for g in gates_of(self.report, section)]
        if "fail" in statuses:
            return "fail"
        return "pass" if "pass" in statuses else None
