"""Marker arguments are keywords from a known set: a typo is an error naming it, never a
silently ignored requirement."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .errors import KpModelError


def check_marker_args(
    marker: str, args: tuple, kwargs: dict[str, Any], allowed: Iterable[str]
) -> None:
    allowed = tuple(allowed)
    if args:
        raise KpModelError(
            f"{marker} takes keyword arguments only ({', '.join(allowed)}); got {args!r}"
        )
    unknown = sorted(set(kwargs) - set(allowed))
    if unknown:
        raise KpModelError(
            f"{marker}: unknown argument(s) {', '.join(unknown)}; allowed: {', '.join(allowed)}"
        )
