"""The two sections that are artifact grids: ``gallery`` (sample predictions, worst first)
and ``other`` (figures no other section claims)."""

from __future__ import annotations

from ..markup import meta_caption
from ..page import Page


def gallery(page: Page) -> str:
    arts = page.artifacts_for("gallery")
    if not arts:
        return ""
    legend = (
        '<p class="legend"><span class="sw" style="background:#28dc50"></span>ground truth '
        '<span class="sw" style="background:#ff8c00"></span>predicted box (score) '
        '<span class="sw" style="background:#2878ff"></span>left limbs '
        '<span class="sw" style="background:#ff3232"></span>right limbs '
        '<span class="sw" style="background:#ffd200"></span>centre. Worst images first '
        "(lowest share of people found at OKS ≥ 0.5, then lowest mean OKS).</p>"
    )
    cells = "".join(page.artifact_figure(a) for a in arts)
    return legend + f'<div class="grid">{cells}</div>'


def other(page: Page) -> str:
    arts = page.artifacts_for("other")
    if not arts:
        return ""
    return (
        '<div class="grid">'
        + "".join(page.artifact_figure(a, meta_caption(a)) for a in arts)
        + "</div>"
    )
