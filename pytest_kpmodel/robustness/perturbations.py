"""Perturbations: small frozen dataclasses that corrupt images and move ground truth consistently.

A ``Perturbation(kind, severity, params, seed)`` is fully described by its ``repr``, which is
valid Python: ``eval(repr(p)) == p`` and applying either gives bit-identical images.

Severity is a float in ``[0, 5]``. Severity 0 is always the identity; every parameter is a
continuous (piecewise-linear) function of severity that moves away from the identity as severity
grows, so hypothesis' shrinking of floats towards 0 shrinks towards the mildest perturbation. For
the 15 ImageNet-C corruptions the integer severities 1-5 give exactly the constants of
``imagecorruptions/corruptions.py`` (see ``corruptions.py`` for the table and deviations). The
kinds, their parameter tables and how parameters follow severity are in :mod:`.kinds`.

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

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pytest_kpmodel.robustness.kinds import (
    KINDS,
    KindSpec,
    check_severity,
    freeze,
    params_for,
    spec_of,
)

if TYPE_CHECKING:
    import torch

    from pytest_kpmodel.adapters.base import Prediction
    from pytest_kpmodel.keypoints import KeypointSet
    from pytest_kpmodel.robustness.geometry import AffineTransform


class _Applies:
    """``apply`` for a perturbation and for a composition: their ``steps``, in order."""

    steps: tuple[Perturbation, ...]

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
        return _apply_steps(self.steps, images, targets, predictions, keypoint_set, indices)


@dataclass(frozen=True, repr=False)
class Perturbation(_Applies):
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
        spec = spec_of(self.kind)
        given = dict(self.params.items() if isinstance(self.params, Mapping) else self.params)
        unknown = sorted(set(given) - set(spec.param_names))
        if unknown:
            raise ValueError(
                f"{self.kind}: unknown parameter(s) {', '.join(map(repr, unknown))}; "
                f"one of {', '.join(spec.param_names)}"
            )
        full = params_for(self.kind, self.severity)
        full.update({k: freeze(v) for k, v in given.items()})
        object.__setattr__(self, "severity", check_severity(self.severity))
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


@dataclass(frozen=True, repr=False)
class Compose(_Applies):
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
    from pytest_kpmodel.robustness.geometry import (
        transform_prediction,
        transform_target,
    )
    from pytest_kpmodel.robustness.ops.apply import apply_kind

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
        images, step_transforms = apply_kind(
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
