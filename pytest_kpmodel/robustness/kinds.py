"""The perturbation kinds: what each one does, its parameters and how they follow severity.

``KINDS[name]`` is a :class:`KindSpec`: the parameter table at severities 0-5 (interpolated in
between, see :func:`params_for`), the free parameters (:class:`FreeParam`) that set no
strength, its group and whether it is geometric or one of the 15 ImageNet-C corruptions
(``CORRUPTIONS``, in the benchmark's order). The kernels that apply each kind are in
:mod:`.ops`; the perturbation objects in :mod:`.perturbations`. Data and pure Python only: no
torch at import.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

MAX_SEVERITY = 5.0


@dataclass(frozen=True)
class FreeParam:
    """A parameter that does not set the strength: drawn by strategies, neutral by default."""

    name: str
    type: str  # "float" | "bool" | "choice" | "rgb"
    low: float = 0.0
    high: float = 1.0
    choices: tuple[Any, ...] = ()
    default: Any = None
    doc: str = ""


@dataclass(frozen=True)
class KindSpec:
    """How a kind's parameters depend on severity.

    ``table[name]`` holds the parameter at severities 0, 1, 2, 3, 4, 5; fractional severities
    interpolate linearly, except names in ``stepwise`` (integer parameters that take the value of
    the next integer severity, e.g. glass-blur iterations), names in ``integer`` (rounded) and
    names in ``reciprocal`` (interpolated as 1/value; ``inf`` at severity 0 becomes ``None``).
    """

    name: str
    group: str
    table: Mapping[str, tuple[float, ...]]
    free: tuple[FreeParam, ...] = ()
    integer: tuple[str, ...] = ()
    stepwise: tuple[str, ...] = ()
    reciprocal: tuple[str, ...] = ()
    geometric: bool = False
    corruption: bool = False  # one of the 15 ImageNet-C / COCO-C corruptions
    doc: str = ""

    @property
    def param_names(self) -> tuple[str, ...]:
        return tuple(self.table) + tuple(f.name for f in self.free)


_ANGLE_DOC = "degrees; None draws one per image from the seed (as ImageNet-C does)"
_RGB = FreeParam("colour", "rgb", default=(0.5, 0.5, 0.5), doc="RGB in [0, 1]")

KINDS: dict[str, KindSpec] = {}


def _kind(spec: KindSpec) -> None:
    for values in spec.table.values():
        assert len(values) == 6, spec.name
    KINDS[spec.name] = spec


# ---------------------------------------------------------------- photometric
_kind(KindSpec(
    "brightness", "photometric", {"delta": (0.0, 0.1, 0.2, 0.3, 0.4, 0.5)}, corruption=True,
    doc="HSV value + delta (ImageNet-C brightness; exact closed form of skimage's HSV round trip)",
))  # fmt: skip
_kind(KindSpec(
    "contrast", "photometric", {"factor": (1.0, 0.4, 0.3, 0.2, 0.1, 0.05)}, corruption=True,
    doc="(x - mean) * factor + mean, per image and channel (ImageNet-C contrast)",
))  # fmt: skip
_kind(KindSpec(
    "low_light", "photometric",
    {"gamma": (1.0, 1.2, 1.4, 1.7, 2.0, 2.5), "gain": (1.0, 0.8, 0.6, 0.45, 0.3, 0.2)},
    doc="gain * x ** gamma: darker, with crushed shadows",
))  # fmt: skip
_kind(KindSpec(
    "saturation", "photometric", {"strength": (0.0, 0.3, 0.5, 0.7, 0.85, 1.0)},
    free=(FreeParam("boost", "bool", default=False, doc="False: towards grey; True: more saturated"),),
    doc="HSV saturation * factor; factor = 1 - strength (1 + 4 * strength when boost)",
))  # fmt: skip
_kind(KindSpec(
    "colour_cast", "photometric", {"strength": (0.0, 0.08, 0.16, 0.24, 0.32, 0.4)},
    free=(FreeParam("hue", "float", 0.0, 360.0, default=0.0, doc="direction of the cast, degrees"),),
    doc="x * (1 + strength * (cos(h), cos(h - 120), cos(h - 240))) per channel",
))  # fmt: skip

# ---------------------------------------------------------------- noise
_kind(KindSpec(
    "gaussian_noise", "noise", {"sigma": (0.0, 0.08, 0.12, 0.18, 0.26, 0.38)}, corruption=True,
    doc="x + N(0, sigma)",
))  # fmt: skip
_kind(KindSpec(
    "shot_noise", "noise", {"photons": (math.inf, 60.0, 25.0, 12.0, 5.0, 3.0)},
    reciprocal=("photons",), corruption=True,
    doc="Poisson(x * photons) / photons (None: no noise)",
))  # fmt: skip
_kind(KindSpec(
    "impulse_noise", "noise", {"amount": (0.0, 0.03, 0.06, 0.09, 0.17, 0.27)}, corruption=True,
    doc="salt and pepper on a fraction `amount` of the values (skimage 's&p')",
))  # fmt: skip
_kind(KindSpec(
    "speckle_noise", "noise", {"sigma": (0.0, 0.15, 0.2, 0.35, 0.45, 0.6)},
    doc="x + x * N(0, sigma) (ImageNet-C extra corruption)",
))  # fmt: skip

# ---------------------------------------------------------------- blur
_kind(KindSpec(
    "gaussian_blur", "blur", {"sigma": (0.0, 1.0, 2.0, 3.0, 4.0, 6.0)},
    doc="separable Gaussian, truncate 4, edge-replicate (skimage.filters.gaussian)",
))  # fmt: skip
_kind(KindSpec(
    "defocus_blur", "blur",
    {"radius": (0.0, 3.0, 4.0, 6.0, 8.0, 10.0), "alias_blur": (0.1, 0.1, 0.5, 0.5, 0.5, 0.5)},
    corruption=True, doc="anti-aliased disk kernel (cv2.filter2D, reflect-101 border)",
))  # fmt: skip
_kind(KindSpec(
    "motion_blur", "blur",
    {"radius": (0.0, 10.0, 15.0, 15.0, 15.0, 20.0), "sigma": (1.0, 3.0, 5.0, 8.0, 12.0, 15.0)},
    integer=("radius",), corruption=True,
    free=(FreeParam("angle", "float", -45.0, 45.0, default=None, doc=_ANGLE_DOC),),
    doc="one-sided Gaussian line kernel of 2 * radius + 1 taps (ImageNet-C shift-and-add)",
))  # fmt: skip
_kind(KindSpec(
    "zoom_blur", "blur",
    {"max_zoom": (1.0, 1.11, 1.15, 1.20, 1.24, 1.30), "step": (0.01, 0.01, 0.01, 0.02, 0.02, 0.03)},
    corruption=True, doc="mean of the image and centre zooms 1, 1 + step, ..., max_zoom",
))  # fmt: skip
_kind(KindSpec(
    "glass_blur", "blur",
    {"sigma": (0.0, 0.7, 0.9, 1.0, 1.1, 1.5), "max_delta": (0, 1, 2, 2, 3, 4),
     "iterations": (0, 2, 1, 3, 2, 2)},
    stepwise=("max_delta", "iterations"), corruption=True,
    doc="blur, local pixel shuffling within max_delta, blur (vectorised shuffle)",
))  # fmt: skip

# ---------------------------------------------------------------- digital
_kind(KindSpec(
    "jpeg_compression", "digital", {"quality": (100.0, 25.0, 18.0, 15.0, 10.0, 7.0)},
    integer=("quality",), corruption=True, doc="JPEG round trip at quality (PIL on CPU, nvjpeg on CUDA)",
))  # fmt: skip
_kind(KindSpec(
    "pixelate", "digital", {"factor": (1.0, 0.6, 0.5, 0.4, 0.3, 0.25)}, corruption=True,
    doc="box-downsample by factor, nearest-upsample back",
))  # fmt: skip
_kind(KindSpec(
    "downscale", "digital", {"factor": (1.0, 0.75, 0.5, 0.35, 0.25, 0.15)},
    doc="antialiased bilinear downsample by factor, bilinear upsample back",
))  # fmt: skip
_kind(KindSpec(
    "elastic_transform", "digital", {"alpha": (0.0, 12.5, 16.25, 21.25, 25.0, 30.0)},
    corruption=True,
    doc="smoothed random displacement field (imagecorruptions' elastic_transform)",
))  # fmt: skip

# ---------------------------------------------------------------- weather
_kind(KindSpec(
    "fog", "weather",
    {"amount": (0.0, 1.5, 2.0, 2.5, 2.5, 3.0), "decay": (2.0, 2.0, 2.0, 1.7, 1.5, 1.4)},
    corruption=True, doc="plasma-fractal haze (diamond-square), renormalised to the image maximum",
))  # fmt: skip
_kind(KindSpec(
    "frost", "weather",
    {"image": (1.0, 1.0, 0.8, 0.7, 0.65, 0.6), "frost": (0.0, 0.4, 0.6, 0.7, 0.7, 0.75)},
    corruption=True, doc="image * x + frost * texture with a procedural ice texture",
))  # fmt: skip
_kind(KindSpec(
    "snow", "weather",
    {"loc": (-0.5, 0.1, 0.2, 0.55, 0.55, 0.55), "scale": (0.3, 0.3, 0.3, 0.3, 0.3, 0.3),
     "zoom": (3.0, 3.0, 2.0, 4.0, 4.5, 2.5), "threshold": (1.0, 0.5, 0.5, 0.9, 0.85, 0.85),
     "radius": (10.0, 10.0, 12.0, 12.0, 12.0, 12.0), "sigma": (4.0, 4.0, 4.0, 8.0, 8.0, 12.0),
     "blend": (1.0, 0.8, 0.7, 0.7, 0.65, 0.55)},
    integer=("radius",), corruption=True,
    free=(FreeParam("angle", "float", -135.0, -45.0, default=None, doc=_ANGLE_DOC),),
    doc="thresholded zoomed noise, motion-blurred into streaks, over a whitened image",
))  # fmt: skip

# ---------------------------------------------------------------- occlusion
_kind(KindSpec(
    "occlusion", "occlusion", {"area": (0.0, 0.05, 0.1, 0.2, 0.3, 0.45)},
    free=(
        FreeParam("x", "float", 0.0, 1.0, default=0.5, doc="centre, fraction of the box width"),
        FreeParam("y", "float", 0.0, 1.0, default=0.5, doc="centre, fraction of the box height"),
        FreeParam("placement", "choice", choices=("over", "beside"), default="over"),
        FreeParam("texture", "choice", choices=("solid", "noise", "stripes", "checker"),
                  default="solid"),
        _RGB,
    ),
    doc="one rectangle of `area` x the person box per person (the whole image when none known)",
))  # fmt: skip

# ---------------------------------------------------------------- geometric
_kind(KindSpec(
    "scale", "geometric", {"amount": (0.0, 0.1, 0.2, 0.3, 0.4, 0.5)}, geometric=True,
    free=(FreeParam("shrink", "bool", default=False, doc="factor 1 / (1 + amount) when True"),),
    doc="resize the whole image by 1 + amount (canvas changes size; Gaussian antialias, bilinear)",
))  # fmt: skip
_kind(KindSpec(
    "translate", "geometric", {"fraction": (0.0, 0.04, 0.08, 0.12, 0.16, 0.2)}, geometric=True,
    free=(FreeParam("direction", "float", 0.0, 360.0, default=0.0, doc="degrees, 0 = +x, 90 = +y"),),
    doc="shift by round(fraction * (W, H) * (cos, sin)) whole pixels, black fill",
))  # fmt: skip
_kind(KindSpec(
    "rotate", "geometric", {"degrees": (0.0, 3.0, 6.0, 9.0, 12.0, 15.0)}, geometric=True,
    free=(FreeParam("clockwise", "bool", default=False),),
    doc="rotate about the image centre (bilinear, black fill)",
))  # fmt: skip
_kind(KindSpec(
    "hflip", "geometric", {}, geometric=True,
    doc="mirror x -> W - x (any severity > 0), swapping left/right keypoints by flip_pairs",
))  # fmt: skip

GROUPS: dict[str, tuple[str, ...]] = {}
for _spec in KINDS.values():
    GROUPS.setdefault(_spec.group, ())
    GROUPS[_spec.group] += (_spec.name,)

CORRUPTIONS: tuple[str, ...] = (
    "gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "glass_blur", "motion_blur",
    "zoom_blur", "snow", "frost", "fog", "brightness", "contrast", "elastic_transform", "pixelate",
    "jpeg_compression",
)  # fmt: skip
"""The 15 ImageNet-C / COCO-C corruptions, in the benchmark's order."""


def resolve_kinds(kinds: str | Sequence[str] | None) -> tuple[str, ...]:
    """Kind and group names (``"noise"``, ``"geometric"``, ``"corruptions"``) -> kind names."""
    if kinds is None:
        return tuple(KINDS)
    if isinstance(kinds, str):
        kinds = [kinds]
    out: list[str] = []
    for name in kinds:
        if name in KINDS:
            names: Sequence[str] = (name,)
        elif name in GROUPS:
            names = GROUPS[name]
        elif name == "corruptions":
            names = CORRUPTIONS
        else:
            known = ", ".join([*GROUPS, "corruptions", *KINDS])
            raise ValueError(f"unknown perturbation kind or group {name!r}; one of {known}")
        out.extend(n for n in names if n not in out)
    return tuple(out)


def _interpolate(values: tuple[float, ...], severity: float, stepwise: bool) -> float:
    if stepwise:
        return float(values[math.ceil(severity)])
    i = min(int(math.floor(severity)), 4)
    frac = severity - i
    if frac == 0.0:
        return float(values[i])
    return float(values[i] + (values[i + 1] - values[i]) * frac)


def _interpolate_reciprocal(values: tuple[float, ...], severity: float) -> float | None:
    inv = _interpolate(tuple(0.0 if v == math.inf else 1.0 / v for v in values), severity, False)
    if inv == 0.0:
        return None
    i = int(math.floor(severity))
    if severity == i:
        return float(values[i])
    return round(1.0 / inv, 4)


def params_for(kind: str, severity: float, **free: Any) -> dict[str, Any]:
    """All parameters of ``kind`` at ``severity``, with ``free`` overriding the free defaults."""
    spec = spec_of(kind)
    severity = check_severity(severity)
    params: dict[str, Any] = {}
    for name, values in spec.table.items():
        if name in spec.reciprocal:
            params[name] = _interpolate_reciprocal(values, severity)
            continue
        value = _interpolate(values, severity, name in spec.stepwise)
        if name in spec.integer or name in spec.stepwise:
            params[name] = int(round(value))
        else:
            params[name] = round(value, 6)
    for fp in spec.free:
        params[fp.name] = fp.default
    for name, value in free.items():
        if name not in params:
            raise ValueError(
                f"{kind}: unknown parameter {name!r}; one of {', '.join(spec.param_names)}"
            )
        params[name] = freeze(value)
    return params


def spec_of(kind: str) -> KindSpec:
    try:
        return KINDS[kind]
    except KeyError:
        raise ValueError(f"unknown perturbation kind {kind!r}; one of {', '.join(KINDS)}") from None


def check_severity(severity: float) -> float:
    severity = float(severity)
    if not 0.0 <= severity <= MAX_SEVERITY:
        raise ValueError(f"severity must be in [0, {MAX_SEVERITY:g}], got {severity!r}")
    return severity


def freeze(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return tuple(freeze(v) for v in value)
    return value
