"""Affine maps of boxes and keypoints between an image and its geometric perturbation.

Convention (used everywhere in the plugin's robustness code): continuous pixel coordinates with
pixel ``(row i, column j)`` covering ``[j, j + 1) x [i, i + 1)``, so its centre is
``(j + 0.5, i + 0.5)`` and an image of width ``W`` spans ``x`` in ``[0, W]``. In this convention

- a horizontal flip is ``x -> W - x`` (pixel ``j`` goes to ``W - 1 - j``, exactly ``torch.flip``),
- a resize from ``W`` to ``W'`` is ``x -> x * W' / W`` (``F.interpolate(align_corners=False)``),
- ``grid_sample(align_corners=False)`` samples the continuous point it is given.

Boxes are xyxy in the same coordinates. Under maps without rotation boxes transform exactly (and
back); under a rotation a box becomes the axis-aligned box enclosing its four rotated corners, so
mapping it back gives a larger box (keypoints stay exact). A transform with a reflection
(``flip``) also permutes keypoints with the keypoint set's ``flip_index()``: what the model calls
the left shoulder in a mirrored image is the mirror of the right shoulder of the original.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from pytest_kpmodel.adapters.base import Prediction


@dataclass(frozen=True)
class AffineTransform:
    """``(x, y) -> (a x + b y + c, d x + e y + f)`` from an ``in_size`` to an ``out_size`` image.

    Sizes are ``(height, width)``. ``flip`` is True when the map reflects (determinant < 0):
    keypoints are then permuted by the flip index.
    """

    matrix: tuple[float, float, float, float, float, float]
    in_size: tuple[int, int]
    out_size: tuple[int, int]

    @property
    def flip(self) -> bool:
        a, b, _, d, e, _ = self.matrix
        return a * e - b * d < 0

    @property
    def axis_aligned(self) -> bool:
        return self.matrix[1] == 0.0 and self.matrix[3] == 0.0

    @property
    def det(self) -> float:
        a, b, _, d, e, _ = self.matrix
        return a * e - b * d

    # ------------------------------------------------------------- constructors
    @classmethod
    def identity(cls, size: tuple[int, int]) -> AffineTransform:
        return cls((1.0, 0.0, 0.0, 0.0, 1.0, 0.0), size, size)

    @classmethod
    def hflip(cls, size: tuple[int, int]) -> AffineTransform:
        h, w = size
        return cls((-1.0, 0.0, float(w), 0.0, 1.0, 0.0), size, size)

    @classmethod
    def resize(cls, size: tuple[int, int], new_size: tuple[int, int]) -> AffineTransform:
        (h, w), (nh, nw) = size, new_size
        return cls((nw / w, 0.0, 0.0, 0.0, nh / h, 0.0), size, new_size)

    @classmethod
    def translate(cls, size: tuple[int, int], dx: float, dy: float) -> AffineTransform:
        return cls((1.0, 0.0, float(dx), 0.0, 1.0, float(dy)), size, size)

    @classmethod
    def rotate(cls, size: tuple[int, int], degrees: float) -> AffineTransform:
        """Counter-clockwise as seen on screen (y down), about the image centre ``(W/2, H/2)``."""
        h, w = size
        cx, cy = w / 2.0, h / 2.0
        t = math.radians(degrees)
        cos, sin = math.cos(t), math.sin(t)
        # x' = cx + cos (x - cx) + sin (y - cy);  y' = cy - sin (x - cx) + cos (y - cy)
        return cls(
            (cos, sin, cx - cos * cx - sin * cy, -sin, cos, cy + sin * cx - cos * cy), size, size
        )

    # ------------------------------------------------------------- algebra
    def as_matrix(self) -> list[list[float]]:
        a, b, c, d, e, f = self.matrix
        return [[a, b, c], [d, e, f], [0.0, 0.0, 1.0]]

    def inverse(self) -> AffineTransform:
        a, b, c, d, e, f = self.matrix
        det = a * e - b * d
        ia, ib, id_, ie = e / det, -b / det, -d / det, a / det
        ic = -(ia * c + ib * f)
        if_ = -(id_ * c + ie * f)
        return AffineTransform((ia, ib, ic, id_, ie, if_), self.out_size, self.in_size)

    def then(self, other: AffineTransform) -> AffineTransform:
        """This map followed by ``other``."""
        if other.in_size != self.out_size:
            raise ValueError(f"cannot chain {self.out_size} -> {other.in_size}")
        a, b, c, d, e, f = self.matrix
        A, B, C, D, E, F = other.matrix
        m = (A * a + B * d, A * b + B * e, A * c + B * f + C, D * a + E * d, D * b + E * e,
             D * c + E * f + F)  # fmt: skip
        return AffineTransform(m, self.in_size, other.out_size)

    # ------------------------------------------------------------- application
    def points(self, xy: torch.Tensor) -> torch.Tensor:
        """Map ``[..., 2]`` points; computed in float64, returned in ``xy``'s dtype."""
        a, b, c, d, e, f = self.matrix
        p = xy.to(torch.float64)
        x, y = p[..., 0], p[..., 1]
        out = torch.stack((a * x + b * y + c, d * x + e * y + f), dim=-1)
        return out.to(xy.dtype)

    def boxes(self, boxes: torch.Tensor) -> torch.Tensor:
        """Map ``[N, 4]`` xyxy boxes (enclosing box of the mapped corners)."""
        if boxes.numel() == 0:
            return boxes.clone()
        x1, y1, x2, y2 = boxes.unbind(-1)
        corners = torch.stack(
            (torch.stack((x1, y1), -1), torch.stack((x2, y1), -1),
             torch.stack((x1, y2), -1), torch.stack((x2, y2), -1)), dim=-2,
        )  # fmt: skip
        mapped = self.points(corners)
        lo = mapped.amin(dim=-2)
        hi = mapped.amax(dim=-2)
        return torch.cat((lo, hi), dim=-1)

    def keypoints(
        self, keypoints: torch.Tensor, flip_index: Sequence[int] | None = None
    ) -> torch.Tensor:
        """Map ``[N, K, 2+]`` keypoints; other columns (score/visibility) are kept. With a
        reflection, keypoint ``k`` of the result is the mapped keypoint ``flip_index[k]``."""
        out = keypoints.clone()
        if keypoints.numel() == 0:
            return out
        out[..., :2] = self.points(keypoints[..., :2])
        if self.flip:
            if flip_index is None:
                raise ValueError("a reflecting transform needs the keypoint set's flip_index")
            index = torch.as_tensor(list(flip_index), device=keypoints.device, dtype=torch.long)
            out = out.index_select(-2, index)
        return out


def transform_prediction(
    pred: Prediction, t: AffineTransform, flip_index: Sequence[int] | None = None
) -> Prediction:
    """A prediction in ``t``'s output frame (boxes not clipped, scores kept)."""
    return Prediction(
        boxes=t.boxes(pred.boxes),
        scores=pred.scores,
        labels=pred.labels,
        keypoints=t.keypoints(pred.keypoints, flip_index),
    )


def transform_target(target: Any, t: AffineTransform, flip_index: Sequence[int] | None = None):
    """Ground truth in ``t``'s output frame.

    Keypoints with visibility 0 stay ``(0, 0, 0)`` (COCO's "not labelled"); labelled keypoints that
    leave the image get visibility 0. Boxes are clipped to the new image; ``area`` (if present) is
    scaled by ``|det|``. Other entries pass through. Works on dicts and on objects with
    ``boxes``/``keypoints`` attributes (dataclasses are copied with ``dataclasses.replace``).
    """
    is_map = isinstance(target, Mapping)
    get = target.get if is_map else lambda k, default=None: getattr(target, k, default)
    changes: dict[str, Any] = {}
    h, w = t.out_size
    boxes = get("boxes")
    if boxes is not None:
        moved = t.boxes(boxes)
        if moved.numel():
            moved[:, 0::2] = moved[:, 0::2].clamp(0, w)
            moved[:, 1::2] = moved[:, 1::2].clamp(0, h)
        changes["boxes"] = moved
    kps = get("keypoints")
    if kps is not None:
        moved = t.keypoints(kps, flip_index)
        if moved.numel():
            labelled = moved[..., 2] > 0
            x, y = moved[..., 0], moved[..., 1]
            inside = (x >= 0) & (x <= w) & (y >= 0) & (y <= h)
            moved[..., 2] = torch.where(labelled & inside, moved[..., 2], 0)
            moved[..., :2] = torch.where(
                (labelled & inside).unsqueeze(-1), moved[..., :2], torch.zeros_like(moved[..., :2])
            )
        changes["keypoints"] = moved
    area = get("area")
    if area is not None:
        changes["area"] = area * abs(t.det)
    if is_map:
        return {**target, **changes}
    if dataclasses.is_dataclass(target):
        return dataclasses.replace(target, **changes)
    clone = type(target).__new__(type(target))
    clone.__dict__.update(vars(target))
    clone.__dict__.update(changes)
    return clone
