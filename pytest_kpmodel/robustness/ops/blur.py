"""Blur kernels: Gaussian, defocus, motion, zoom and glass blur."""

from __future__ import annotations

import torch

from .context import Kernel, kernel_angles
from .filters import clipped_zoom, conv_same, disk_kernel, gaussian_blur, motion_blur_batch


def _gaussian_blur(x, p, ctx):
    return gaussian_blur(x, p["sigma"]).clamp(0, 1)


def _defocus_blur(x, p, ctx):
    if p["radius"] <= 0:
        return x
    kernel = disk_kernel(p["radius"], p["alias_blur"], x.device)
    return conv_same(x, kernel, "reflect101").clamp(0, 1)


def _motion_blur(x, p, ctx):
    if p["radius"] <= 0:
        return x
    angles = kernel_angles(ctx, x.shape[0], p["angle"], -45.0, 45.0)
    return motion_blur_batch(x, p["radius"], p["sigma"], angles).clamp(0, 1)


def zoom_factors(max_zoom: float, step: float) -> list[float]:
    """``np.arange(1, max_zoom + step / 2, step)``: numpy's own values (it steps by
    ``(1 + step) - 1``), which decide ``round(crop * zoom)`` exactly as in ImageNet-C."""
    import numpy as np

    return [float(z) for z in np.arange(1.0, max_zoom + step / 2, step)]


def _zoom_blur(x, p, ctx):
    zooms = zoom_factors(p["max_zoom"], p["step"])
    if len(zooms) <= 1:
        return x
    # Channels-last: torch's bilinear resize of a crop is about 3x faster in that layout on
    # the CPU (identical values), and the zoomed copies are the whole cost of this kind.
    xl = x.contiguous(memory_format=torch.channels_last)
    out = xl.clone()
    for z in zooms:
        out += clipped_zoom(xl, z)
    return (out / (len(zooms) + 1)).clamp(0, 1).contiguous()


def _glass_blur(x, p, ctx):
    sigma, delta, iterations = p["sigma"], p["max_delta"], p["iterations"]
    b, c, h, w = x.shape
    y = gaussian_blur(x, sigma) if sigma > 0 else x
    y = torch.floor(y.clamp(0, 1) * 255) / 255  # np.uint8(...) truncation
    if delta > 0 and iterations > 0:
        rows = torch.arange(h, device=x.device).view(1, h, 1)
        cols = torch.arange(w, device=x.device).view(1, 1, w)
        for _ in range(iterations):
            # Vectorised stand-in for the sequential local swaps: every pixel takes the value at
            # an offset drawn from numpy's randint(-delta, delta) range.
            d = ctx.rng.randint(-delta, delta, (2, h, w))
            src = (rows + d[:, 1]).clamp(0, h - 1) * w + (cols + d[:, 0]).clamp(0, w - 1)
            idx = src.view(b, 1, h * w).expand(b, c, h * w)
            y = y.reshape(b, c, h * w).gather(2, idx).view(b, c, h, w)
    return (gaussian_blur(y, sigma) if sigma > 0 else y).clamp(0, 1)


KERNELS: dict[str, Kernel] = {
    "gaussian_blur": _gaussian_blur,
    "defocus_blur": _defocus_blur,
    "motion_blur": _motion_blur,
    "zoom_blur": _zoom_blur,
    "glass_blur": _glass_blur,
}
