"""Weather kernels: fog, frost and snow."""

from __future__ import annotations

import torch

from .context import SEED_MEMO, Kernel, kernel_angles
from .filters import clipped_zoom, motion_blur_batch, next_pow2, to_gray
from .textures import frost_texture, plasma_fractal


def _fog(x, p, ctx):
    amount = p["amount"]
    if amount == 0:
        return x
    b, c, h, w = x.shape
    mapsize = next_pow2(max(h, w, c))
    decay = p["decay"]
    # The haze is a function of the seeds, the size and the decay: severities 1 and 2 share
    # decay 2 (and their draws), so a sweep makes it four times instead of five.
    key = ("fog", tuple(ctx.seeds), mapsize, h, w, decay, str(x.device))
    haze = SEED_MEMO.get(key, lambda: plasma_fractal(ctx.rng, mapsize, decay, (h, w)))
    max_val = x.flatten(1).amax(1).view(-1, 1, 1, 1)
    y = torch.add(x, haze.unsqueeze(1), alpha=amount)
    return y.mul_(max_val / (max_val + amount)).clamp_(0, 1)


def _frost(x, p, ctx):
    if p["frost"] == 0 and p["image"] == 1:
        return x
    b, c, h, w = x.shape
    # A function of the images' seeds and size only: the same at every severity of a sweep.
    key = ("frost", tuple(ctx.seeds), c, h, w, str(x.device))
    tex = SEED_MEMO.get(key, lambda: frost_texture(ctx.rng, h, w, c))
    return torch.mul(x, p["image"]).add_(tex, alpha=p["frost"]).clamp_(0, 1)


def _snow(x, p, ctx):
    b, c, h, w = x.shape
    layer = ctx.rng.normal((1, h, w), mean=p["loc"], std=p["scale"])
    layer = clipped_zoom(layer, p["zoom"])
    layer = layer.masked_fill(layer < p["threshold"], 0.0).clamp_(0, 1)
    angles = kernel_angles(ctx, b, p["angle"], -135.0, -45.0)
    layer = motion_blur_batch(layer, p["radius"], p["sigma"], angles)
    layer = layer.clamp_(0, 1).mul_(255).round_().div_(255)
    blend = p["blend"]
    # One three-channel buffer, the rest in place (a fresh large buffer costs its page faults):
    # blend * x + (1 - blend) * max(x, 1.5 gray + 0.5), then the flakes and their mirror image.
    whitened = torch.maximum(x, to_gray(x).mul_(1.5).add_(0.5))
    y = whitened.mul_(1 - blend).add_(x, alpha=blend)
    return y.add_(layer).add_(layer.flip(-2, -1)).clamp_(0, 1)


KERNELS: dict[str, Kernel] = {
    "fog": _fog,
    "frost": _frost,
    "snow": _snow,
}
