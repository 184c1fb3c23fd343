"""Photometric kernels: brightness, contrast, low light, saturation, colour cast."""

from __future__ import annotations

import math

import torch

from .context import Kernel, result_like


def _brightness(x, p, ctx):
    # skimage rgb2hsv -> V += delta -> hsv2rgb keeps hue and saturation, so every channel scales
    # by V'/V (and black becomes grey V').
    v = x.amax(1, keepdim=True)
    v2 = (v + p["delta"]).clamp_(0, 1)
    # one three-channel buffer: the ratio on one channel, black pixels (V = 0) to grey V'
    scaled = torch.mul(x, v2 / v.clamp_min(1e-12), out=result_like(x))
    return torch.where(v > 0, scaled, v2, out=scaled).clamp_(0, 1)


def _contrast(x, p, ctx):
    m = x.mean(dim=(2, 3), keepdim=True)
    # one output buffer (kept, see result_like), the rest in place: a fresh large buffer costs
    # its page faults
    return torch.sub(x, m, out=result_like(x)).mul_(p["factor"]).add_(m).clamp_(0, 1)


def _low_light(x, p, ctx):
    return (p["gain"] * x.clamp_min(0) ** p["gamma"]).clamp(0, 1)


def _saturation(x, p, ctx):
    factor = 1.0 + 4.0 * p["strength"] if p["boost"] else 1.0 - p["strength"]
    v = x.amax(1, keepdim=True)
    s = (v - x.amin(1, keepdim=True)) / v.clamp_min(1e-12)
    s2 = (s * factor).clamp(0, 1)
    ratio = torch.where(s > 0, s2 / s.clamp_min(1e-12), torch.ones_like(s))
    return (v - ratio * (v - x)).clamp(0, 1)


def _colour_cast(x, p, ctx):
    h = math.radians(p["hue"])
    w = [math.cos(h), math.cos(h - 2 * math.pi / 3), math.cos(h - 4 * math.pi / 3)]
    gain = 1.0 + p["strength"] * torch.tensor(w[: x.shape[1]], device=x.device)
    return (x * gain.view(1, -1, 1, 1)).clamp(0, 1)


KERNELS: dict[str, Kernel] = {
    "brightness": _brightness,
    "contrast": _contrast,
    "low_light": _low_light,
    "saturation": _saturation,
    "colour_cast": _colour_cast,
}
