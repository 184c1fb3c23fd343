"""Marker arguments are keywords from a known set: a typo is an error naming it, never a
silently ignored requirement. Markers that configure something the run does once (the
corruption sweep, the variants table) must agree across the tests that ask for it."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping
from typing import Any, TypeVar

from .errors import KpModelError, did_you_mean

T = TypeVar("T", bound=Hashable)
# One marker as the plugin hands it over: (the test's node id, args, kwargs).
MarkerUse = tuple[str, tuple, dict[str, Any]]


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
        hints = ""
        for name in unknown:
            hint = did_you_mean(name, allowed)
            hints += f"{name}: {hint}" if hint and len(unknown) > 1 else hint
        raise KpModelError(
            f"{marker}: unknown argument(s) {', '.join(unknown)}; {hints}allowed: "
            + ", ".join(allowed)
        )


def parse_markers(
    uses: Iterable[MarkerUse], parse: Callable[[tuple, dict[str, Any]], T]
) -> dict[T, str]:
    """Each marker parsed with ``parse(args, kwargs)`` -> the first test that asks for that
    value; a marker that does not parse is an error naming its test."""
    asked: dict[T, str] = {}
    for nodeid, args, kwargs in uses:
        try:
            value = parse(args, kwargs)
        except KpModelError as exc:
            raise KpModelError(f"{nodeid}: {exc}") from None
        asked.setdefault(value, nodeid)
    return asked


def one_per_run(what: str, asked: Mapping[T, str]) -> T | None:
    """The one value the tests ask for (``asked``: value -> a test asking for it), None when
    none asks; tests asking for different values are an error naming them, since ``what``
    runs once per session."""
    if len(asked) > 1:
        raise KpModelError(
            f"{what} runs once per session, but these tests ask for different ones: "
            f"{', '.join(asked.values())}"
        )
    return next(iter(asked), None)
