"""Geometric kernels (scale, translate, rotate, hflip): each returns the batch and the
``AffineTransform`` it applied, which maps ground truth and predictions exactly.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from pytest_kpmodel.robustness.geometry import AffineTransform

from .context import Kernel
from .filters import gaussian_blur


def _scale(x, p, ctx):
    factor = 1.0 + p["amount"]
    if p["shrink"]:
        factor = 1.0 / factor
    h, w = x.shape[-2:]
    size = (max(1, round(h * factor)), max(1, round(w * factor)))
    t = AffineTransform.resize((h, w), size)
    if size == (h, w):
        return x, t
    if factor < 1:
        # Antialias with a symmetric Gaussian in the source frame, then sample bilinearly at the
        # exact mapped points. (PIL-style antialiased resizing samples a triangle filter at
        # off-centre taps and shifts content by up to ~0.07 px; this keeps the map exact.)
        sigma = (1.0 / factor - 1.0) / 2.0
        x = gaussian_blur(x, sigma, truncate=3.0)
    y = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
    return y.clamp(0, 1), t


def _translate(x, p, ctx):
    h, w = x.shape[-2:]
    a = math.radians(p["direction"])
    dx = int(round(p["fraction"] * w * math.cos(a)))
    dy = int(round(p["fraction"] * h * math.sin(a)))
    out = torch.zeros_like(x)
    if abs(dx) < w and abs(dy) < h:
        out[..., max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = x[
            ..., max(-dy, 0) : h - max(dy, 0), max(-dx, 0) : w - max(dx, 0)
        ]
    return out, AffineTransform.translate((h, w), dx, dy)


def affine_theta(t: AffineTransform) -> torch.Tensor:
    """``affine_grid`` theta (output -> input, normalised, align_corners=False) for ``t``."""
    (h, w), (oh, ow) = t.in_size, t.out_size
    inv = torch.tensor(t.inverse().as_matrix(), dtype=torch.float64)
    n_in = torch.tensor([[2 / w, 0, -1], [0, 2 / h, -1], [0, 0, 1]], dtype=torch.float64)
    n_out_inv = torch.tensor([[ow / 2, 0, ow / 2], [0, oh / 2, oh / 2], [0, 0, 1]],
                             dtype=torch.float64)  # fmt: skip
    return (n_in @ inv @ n_out_inv)[:2].to(torch.float32)


def warp_affine(x: torch.Tensor, t: AffineTransform) -> torch.Tensor:
    """Resample ``x`` so that content at ``p`` moves to ``t(p)`` (bilinear, zeros outside)."""
    b, c = x.shape[:2]
    oh, ow = t.out_size
    theta = affine_theta(t).to(x.device).unsqueeze(0).expand(b, 2, 3)
    grid = F.affine_grid(theta, [b, c, oh, ow], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def _rotate(x, p, ctx):
    h, w = x.shape[-2:]
    degrees = -p["degrees"] if p["clockwise"] else p["degrees"]
    t = AffineTransform.rotate((h, w), degrees)
    return warp_affine(x, t).clamp(0, 1), t


def _hflip(x, p, ctx):
    h, w = x.shape[-2:]
    return x.flip(-1), AffineTransform.hflip((h, w))


KERNELS: dict[str, Kernel] = {
    "scale": _scale,
    "translate": _translate,
    "rotate": _rotate,
    "hflip": _hflip,
}
