"""Perturbations: small frozen dataclasses that corrupt images and move ground truth consistently.

A ``Perturbation(kind, severity, params, seed)`` is fully described by its ``repr``, which is
valid Python: ``eval(repr(p)) == p`` and applying either gives bit-identical images.

Severity is a float in ``[0, 5]``. Severity 0 is always the identity; every parameter is a
continuous (piecewise-linear) function of severity that moves away from the identity as severity
grows, so hypothesis' shrinking of floats towards 0 shrinks towards the mildest perturbation. For
the 15 ImageNet-C corruptions the integer severities 1-5 give exactly the constants of
``imagecorruptions/corruptions.py`` (see ``corruptions.py`` for the table and deviations).

Parameters that do not change how strong a perturbation is (a motion-blur direction, a colour, a
position) are "free" parameters with fixed ranges; they default to a neutral value and the
strategies in ``pytest_kpmodel.strategies`` draw them explicitly. A free parameter left at ``None``
where randomness is allowed (``angle`` of motion blur and snow) is drawn per image from the seed,
as ImageNet-C does.

Randomness: image ``i`` of a call (or ``indices[i]`` when given) uses its own
``torch.Generator`` on the images' device, seeded from ``(seed, index, kind)``. Results therefore do
not depend on batching: perturbing a list at once equals perturbing each image alone with its
index. Generators on different devices (CPU vs CUDA) produce different streams.

Geometric kinds (``scale``, ``translate``, ``rotate``, ``hflip``) return, per image, an
``AffineTransform`` (see ``geometry.py``) mapping continuous pixel coordinates of the original
image to the perturbed one, and ``Perturbed.map_back`` applies its exact inverse to predictions.
Coordinates follow the pixel-centre convention: pixel ``(i, j)`` covers ``[j, j+1) x [i, i+1)``
and its centre is ``(j + 0.5, i + 0.5)``; a horizontal flip maps ``x -> W - x``.

This module imports torch lazily, so importing it (and ``pytest_kpmodel.strategies``) is cheap.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

    from pytest_kpmodel.adapters.base import Prediction
    from pytest_kpmodel.keypoints import KeypointSet
    from pytest_kpmodel.robustness.geometry import AffineTransform

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
    spec = _spec_of(kind)
    severity = _check_severity(severity)
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
        params[name] = _freeze(value)
    return params


def _spec_of(kind: str) -> KindSpec:
    try:
        return KINDS[kind]
    except KeyError:
        raise ValueError(f"unknown perturbation kind {kind!r}; one of {', '.join(KINDS)}") from None


def _check_severity(severity: float) -> float:
    severity = float(severity)
    if not 0.0 <= severity <= MAX_SEVERITY:
        raise ValueError(f"severity must be in [0, {MAX_SEVERITY:g}], got {severity!r}")
    return severity


def _freeze(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return tuple(_freeze(v) for v in value)
    return value


@dataclass(frozen=True, repr=False)
class Perturbation:
    """One perturbation: ``kind`` at ``severity`` with resolved ``params`` and a ``seed``.

    Missing params are filled from the kind's severity table and free defaults, so
    ``Perturbation("gaussian_blur", 2.0)`` is complete. ``repr`` prints every parameter and
    reproduces the perturbation exactly.
    """

    kind: str
    severity: float = 0.0
    params: Any = field(default_factory=dict)  # normalised to a sorted tuple of (name, value)
    seed: int = 0

    def __post_init__(self) -> None:
        spec = _spec_of(self.kind)
        given = dict(self.params.items() if isinstance(self.params, Mapping) else self.params)
        unknown = sorted(set(given) - set(spec.param_names))
        if unknown:
            raise ValueError(
                f"{self.kind}: unknown parameter(s) {', '.join(map(repr, unknown))}; "
                f"one of {', '.join(spec.param_names)}"
            )
        full = params_for(self.kind, self.severity)
        full.update({k: _freeze(v) for k, v in given.items()})
        object.__setattr__(self, "severity", _check_severity(self.severity))
        object.__setattr__(self, "seed", int(self.seed))
        object.__setattr__(self, "params", tuple(sorted(full.items())))

    @classmethod
    def of(cls, kind: str, severity: float, *, seed: int = 0, **free: Any) -> Perturbation:
        """``kind`` at ``severity``; keyword arguments set free (or any) parameters."""
        return cls(kind, severity, params_for(kind, severity, **free), seed)

    @property
    def p(self) -> dict[str, Any]:
        """The parameters as a dict."""
        return dict(self.params)

    @property
    def spec(self) -> KindSpec:
        return KINDS[self.kind]

    @property
    def is_identity(self) -> bool:
        return self.severity == 0.0

    @property
    def steps(self) -> tuple[Perturbation, ...]:
        return (self,)

    def __repr__(self) -> str:
        return (
            f"Perturbation(kind={self.kind!r}, severity={self.severity!r}, "
            f"params={self.p!r}, seed={self.seed!r})"
        )

    def apply(
        self,
        images: Sequence[torch.Tensor],
        targets: Sequence[Any] | None = None,
        predictions: Sequence[Prediction] | None = None,
        *,
        keypoint_set: KeypointSet | None = None,
        indices: Sequence[int] | None = None,
    ) -> Perturbed:
        """Perturb CHW float images in [0, 1]; move targets and predictions with them.

        ``targets``: per image, a dict with ``boxes`` [N, 4] xyxy and ``keypoints`` [N, K, 3]
        (x, y, COCO visibility) or any object with those attributes (other keys pass through).
        ``predictions``: ``Prediction`` objects in the same frame. ``keypoint_set`` supplies the
        flip pairs (default: COCO-17 when K == 17). ``indices``: each image's index in the data set
        (default ``range(len(images))``), which selects its random stream.
        """
        return _apply_steps((self,), images, targets, predictions, keypoint_set, indices)


@dataclass(frozen=True, repr=False)
class Compose:
    """Perturbations applied in order; geometric steps compose into one invertible transform."""

    steps: tuple[Perturbation, ...]

    def __post_init__(self) -> None:
        steps: list[Perturbation] = []
        for step in self.steps:
            steps.extend(step.steps)
        object.__setattr__(self, "steps", tuple(steps))

    @property
    def kind(self) -> str:
        return "+".join(s.kind for s in self.steps) or "identity"

    @property
    def severity(self) -> float:
        return max((s.severity for s in self.steps), default=0.0)

    @property
    def is_identity(self) -> bool:
        return all(s.is_identity for s in self.steps)

    def __repr__(self) -> str:
        inner = ", ".join(repr(s) for s in self.steps)
        return f"Compose(steps=({inner}{',' if len(self.steps) == 1 else ''}))"

    def apply(
        self,
        images: Sequence[torch.Tensor],
        targets: Sequence[Any] | None = None,
        predictions: Sequence[Prediction] | None = None,
        *,
        keypoint_set: KeypointSet | None = None,
        indices: Sequence[int] | None = None,
    ) -> Perturbed:
        return _apply_steps(self.steps, images, targets, predictions, keypoint_set, indices)


@dataclass
class Perturbed:
    """What ``apply`` returns: the perturbed images, moved targets/predictions, and the maps.

    ``transforms[i]`` maps continuous pixel coordinates of original image ``i`` to the perturbed
    image (``None``: same frame). ``map_back`` brings predictions made on ``images`` back to the
    original frame with the exact inverse, swapping left/right keypoints again after a flip.
    """

    images: list[torch.Tensor]
    targets: list[Any] | None
    predictions: list[Prediction] | None
    transforms: list[AffineTransform | None]
    flip_index: tuple[int, ...] | None = None

    def map_back(self, predictions: Sequence[Prediction]) -> list[Prediction]:
        from pytest_kpmodel.robustness.geometry import transform_prediction

        return [
            p if t is None else transform_prediction(p, t.inverse(), self.flip_index)
            for p, t in zip(predictions, self.transforms, strict=True)
        ]

    def map_forward(self, predictions: Sequence[Prediction]) -> list[Prediction]:
        from pytest_kpmodel.robustness.geometry import transform_prediction

        return [
            p if t is None else transform_prediction(p, t, self.flip_index)
            for p, t in zip(predictions, self.transforms, strict=True)
        ]


def _flip_index(keypoint_set: KeypointSet | None, num_keypoints: int | None) -> tuple[int, ...]:
    from pytest_kpmodel.keypoints import COCO17

    if keypoint_set is None:
        if num_keypoints not in (None, COCO17.num_keypoints):
            raise ValueError(
                f"hflip needs the card's keypoint set (flip_pairs) for {num_keypoints} keypoints; "
                "pass keypoint_set="
            )
        keypoint_set = COCO17
    if num_keypoints is not None and keypoint_set.num_keypoints != num_keypoints:
        raise ValueError(
            f"keypoint set has {keypoint_set.num_keypoints} keypoints, the data {num_keypoints}"
        )
    return tuple(keypoint_set.flip_index())


def _num_keypoints(items: Sequence[Any] | None) -> int | None:
    for item in items or ():
        kp = (
            item.get("keypoints") if isinstance(item, Mapping) else getattr(item, "keypoints", None)
        )
        if kp is not None and kp.ndim == 3:
            return int(kp.shape[1])
    return None


def _apply_steps(
    steps: Sequence[Perturbation],
    images: Sequence[torch.Tensor],
    targets: Sequence[Any] | None,
    predictions: Sequence[Prediction] | None,
    keypoint_set: KeypointSet | None,
    indices: Sequence[int] | None,
) -> Perturbed:
    from pytest_kpmodel.robustness import ops
    from pytest_kpmodel.robustness.geometry import (
        transform_prediction,
        transform_target,
    )

    images = list(images)
    n = len(images)
    indices = list(range(n)) if indices is None else [int(i) for i in indices]
    if len(indices) != n:
        raise ValueError(f"{len(indices)} indices for {n} images")
    for what, items in (("targets", targets), ("predictions", predictions)):
        if items is not None and len(items) != n:
            raise ValueError(f"{len(items)} {what} for {n} images")
    targets = None if targets is None else list(targets)
    predictions = None if predictions is None else list(predictions)
    flip_index = None
    if any(s.kind == "hflip" and not s.is_identity for s in steps):
        k = _num_keypoints(targets) or _num_keypoints(predictions)
        flip_index = _flip_index(keypoint_set, k)
    transforms: list[AffineTransform | None] = [None] * n
    for step in steps:
        if step.is_identity:
            continue
        spec = step.spec
        boxes = None
        if step.kind == "occlusion":
            source = targets if targets is not None else predictions
            boxes = None if source is None else [_boxes_of(t) for t in source]
        images, step_transforms = ops.apply_kind(
            step.kind, step.p, images, seed=step.seed, indices=indices, boxes=boxes
        )
        if not spec.geometric:
            continue
        for i, t in enumerate(step_transforms):
            if targets is not None:
                targets[i] = transform_target(targets[i], t, flip_index)
            if predictions is not None:
                predictions[i] = transform_prediction(predictions[i], t, flip_index)
            transforms[i] = t if transforms[i] is None else transforms[i].then(t)
    return Perturbed(images, targets, predictions, transforms, flip_index)


def _boxes_of(item: Any) -> Any:
    return item.get("boxes") if isinstance(item, Mapping) else getattr(item, "boxes", None)
