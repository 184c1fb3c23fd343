"""Hypothesis strategies over perturbation *parameters* (never pixel arrays).

::

    import pytest_kpmodel.strategies as kps
    from hypothesis import given

    @given(p=kps.perturbations(kinds=["photometric", "blur", "hflip"], max_severity=3))
    def test_pose_is_stable(kp_stability, p):
        assert kp_stability(p).mean_oks >= 0.8

Every strategy draws ``Perturbation`` objects (``pytest_kpmodel.robustness.perturbations``):
a kind, a severity float in ``[0, max_severity]``, free parameters (directions, colours,
positions) and a seed. Severity 0 is the identity and every parameter grows with severity, so
hypothesis' shrinking (floats towards 0, booleans towards False, lists towards shorter, choices
towards the first) reports the mildest failing perturbation. A failing example's ``repr`` is
valid Python that reproduces it exactly.

Groups: ``photometric`` (brightness, contrast, low_light, saturation, colour_cast), ``noise``
(gaussian, shot, impulse, speckle), ``blur`` (gaussian, defocus, motion, zoom, glass),
``digital`` (jpeg_compression, pixelate, downscale, elastic_transform), ``weather`` (fog, frost,
snow), ``occlusion``, ``geometric`` (scale, translate, rotate, hflip), and ``corruptions`` (the 15
ImageNet-C corruptions). ``kinds`` accepts group and kind names, mixed.

This module imports hypothesis but neither pytest nor torch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from hypothesis import strategies as st

from pytest_kpmodel.hypothesis_profile import register as _register
from pytest_kpmodel.robustness.kinds import (
    CORRUPTIONS,
    GROUPS,
    KINDS,
    MAX_SEVERITY,
    FreeParam,
    params_for,
    resolve_kinds,
)
from pytest_kpmodel.robustness.perturbations import Compose, Perturbation

__all__ = [
    "PROFILE",
    "blur",
    "corruptions",
    "digital",
    "geometric",
    "kind",
    "noise",
    "occlusion",
    "perturbations",
    "photometric",
    "register_profile",
    "seeds",
    "severities",
    "weather",
    *KINDS,
]

PROFILE = "kpmodel"


def register_profile(name: str = PROFILE, *, max_examples: int = 20, load: bool = False) -> str:
    """Register the ``kpmodel`` settings profile and return its name (see
    :func:`pytest_kpmodel.hypothesis_profile.register`, which hypothesis' entry point calls)."""
    return _register(name, max_examples=max_examples, load=load)


def seeds() -> st.SearchStrategy[int]:
    """Seeds for the perturbations' random streams (shrink towards 0)."""
    return st.integers(min_value=0, max_value=2**32 - 1)


def severities(max_severity: float = 3.0, min_severity: float = 0.0) -> st.SearchStrategy[float]:
    """Severities in ``[min_severity, max_severity]`` in steps of 0.001, shrinking to the min."""
    lo, hi = float(min_severity), float(max_severity)
    if not 0.0 <= lo <= hi <= MAX_SEVERITY:
        raise ValueError(f"need 0 <= min_severity <= max_severity <= {MAX_SEVERITY:g}")
    # Drawn as an integer number of 0.001 steps above min_severity: hypothesis shrinks integers
    # to the smallest value that still fails, i.e. to the mildest severity. (Floats shrink to
    # "simple" values first - an integer like 1.0 or max_severity beats 0.3 - so they won't do.)
    steps = int(round((hi - lo) * 1000))
    return st.integers(0, steps).map(lambda k: min(hi, round(lo + k / 1000, 3)))


def _free_strategy(fp: FreeParam) -> st.SearchStrategy[Any]:
    unit = st.floats(0.0, 1.0, allow_nan=False).map(lambda v: round(v, 3))
    if fp.type == "bool":
        return st.booleans()
    if fp.type == "choice":
        return st.sampled_from(fp.choices)
    if fp.type == "rgb":
        return st.tuples(unit, unit, unit)
    return st.floats(fp.low, fp.high, allow_nan=False, exclude_max=fp.high == 360.0).map(
        lambda v: round(v, 3)
    )


def kind(
    name: str, *, max_severity: float = 3.0, min_severity: float = 0.0
) -> st.SearchStrategy[Perturbation]:
    """One kind at a drawn severity, with drawn free parameters and seed."""
    spec = KINDS.get(name)
    if spec is None:
        raise ValueError(f"unknown perturbation kind {name!r}; one of {', '.join(KINDS)}")
    free = {fp.name: _free_strategy(fp) for fp in spec.free}

    @st.composite
    def draw(dr: Callable[..., Any]) -> Perturbation:
        severity = dr(severities(max_severity, min_severity))
        params = params_for(name, severity, **{k: dr(s) for k, s in free.items()})
        return Perturbation(name, severity, params, dr(seeds()))

    return draw()


def perturbations(
    kinds: str | Sequence[str] | None = None,
    *,
    max_severity: float = 3.0,
    min_severity: float = 0.0,
    max_steps: int = 1,
) -> st.SearchStrategy[Perturbation | Compose]:
    """Perturbations of the given kinds/groups (default: all kinds).

    ``max_steps == 1`` draws single ``Perturbation`` objects; larger values draw ``Compose``
    chains of 1..max_steps perturbations (shrinking towards one step).
    """
    names = resolve_kinds(kinds)
    one = st.one_of([kind(n, max_severity=max_severity, min_severity=min_severity) for n in names])
    if max_steps <= 1:
        return one
    return st.lists(one, min_size=1, max_size=max_steps).map(lambda steps: Compose(tuple(steps)))


def corruptions(
    names: Sequence[str] = CORRUPTIONS, severities: Sequence[int] = (1, 2, 3, 4, 5)
) -> st.SearchStrategy[Perturbation]:
    """The ImageNet-C corruptions at their integer severities (exact benchmark parameters)."""
    for n in names:
        if n not in CORRUPTIONS:
            raise ValueError(f"unknown corruption {n!r}; one of {', '.join(CORRUPTIONS)}")
    sev = sorted(int(s) for s in severities)
    return st.builds(
        lambda n, s, seed: Perturbation(n, float(s), seed=seed),
        st.sampled_from(tuple(names)),
        st.sampled_from(sev),
        seeds(),
    )


def _group(group: str) -> Callable[..., st.SearchStrategy[Perturbation | Compose]]:
    def strategy(
        max_severity: float = 3.0, *, min_severity: float = 0.0, max_steps: int = 1
    ) -> st.SearchStrategy[Perturbation | Compose]:
        return perturbations(
            group, max_severity=max_severity, min_severity=min_severity, max_steps=max_steps
        )

    strategy.__name__ = strategy.__qualname__ = group
    strategy.__doc__ = f"Perturbations of the {group} group: {', '.join(GROUPS[group])}."
    return strategy


photometric = _group("photometric")
noise = _group("noise")
blur = _group("blur")
digital = _group("digital")
weather = _group("weather")
occlusion = _group("occlusion")
geometric = _group("geometric")


def _single(name: str) -> Callable[..., st.SearchStrategy[Perturbation]]:
    def strategy(
        max_severity: float = 3.0, *, min_severity: float = 0.0
    ) -> st.SearchStrategy[Perturbation]:
        return kind(name, max_severity=max_severity, min_severity=min_severity)

    strategy.__name__ = strategy.__qualname__ = name
    strategy.__doc__ = f"{name}: {KINDS[name].doc}."
    return strategy


# One strategy function per kind: kps.gaussian_noise(max_severity=2), kps.hflip(), ...
for _name in KINDS:
    if _name not in globals():
        globals()[_name] = _single(_name)
# `occlusion` names both a group and its only kind; the group function covers it.
