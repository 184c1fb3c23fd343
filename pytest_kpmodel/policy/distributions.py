"""Installed distributions and requirements, read with ``importlib.metadata`` and ``packaging``.

Distributions come from ``sys.path``, or from explicit ``paths`` (a site dir, or a folder of
``*.dist-info``); names are compared after PEP 503 normalisation, environment markers are
evaluated on this machine.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from importlib import metadata

from packaging.markers import Marker
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from ..errors import KpModelError


def installed_distributions(paths: Sequence[str] | None = None) -> dict[str, metadata.Distribution]:
    """Canonical (PEP 503) name -> distribution; the first one found on the path wins."""
    found = metadata.distributions(path=[str(p) for p in paths]) if paths is not None else None
    dists: dict[str, metadata.Distribution] = {}
    for dist in found if found is not None else metadata.distributions():
        name = dist.metadata.get("Name") if dist.metadata is not None else None
        if name:
            dists.setdefault(canonicalize_name(name), dist)
    return dists


def parse_requirement(text: str, origin: str) -> Requirement:
    try:
        return Requirement(text)
    except InvalidRequirement as exc:
        raise KpModelError(f"{origin}: {text!r} is not a requirement: {exc}") from None


def marker_applies(marker: Marker | None, extra: str = "") -> bool:
    if marker is None:
        return True
    return marker.evaluate({"extra": extra})


def dist_requirements(dist: metadata.Distribution, extras: Iterable[str] = ()) -> list[Requirement]:
    """What installing ``dist`` (with ``extras``) pulls in here: markers evaluated."""
    out = []
    extras = ("", *extras)
    for text in dist.requires or ():
        try:
            req = Requirement(text)
        except InvalidRequirement:
            continue  # a broken Requires-Dist line in someone else's metadata: not ours to judge
        if any(marker_applies(req.marker, e) for e in extras):
            out.append(req)
    return out


def requirement_closure(
    requires: Iterable[Requirement], dists: dict[str, metadata.Distribution]
) -> dict[str, metadata.Distribution]:
    """The installed distributions the requirements pull in, transitively (markers applied)."""
    out: dict[str, metadata.Distribution] = {}
    seen: set[tuple[str, frozenset[str]]] = set()
    todo = [r for r in requires if marker_applies(r.marker)]
    while todo:
        req = todo.pop()
        name = canonicalize_name(req.name)
        key = (name, frozenset(req.extras))
        if key in seen:
            continue
        seen.add(key)
        dist = dists.get(name)
        if dist is None:
            continue  # missing: the requires sub-check reports it
        out[name] = dist
        todo.extend(dist_requirements(dist, req.extras))
    return out
