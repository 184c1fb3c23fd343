"""Noise kernels: Gaussian, shot (Poisson), impulse (salt and pepper) and speckle noise."""

from __future__ import annotations

import torch

from .context import Kernel


def _gaussian_noise(x, p, ctx):
    if p["sigma"] == 0:
        return x
    return (x + ctx.rng.normal(x.shape[1:], std=p["sigma"])).clamp(0, 1)


def _shot_noise(x, p, ctx):
    c = p["photons"]
    if c is None:
        return x
    return (ctx.rng.poisson(x.clamp(0, 1) * c) / c).clamp(0, 1)


def _impulse_noise(x, p, ctx):
    amount = p["amount"]
    if amount == 0:
        return x
    # skimage draws "flipped" (u1 <= amount) and "salted" (u2 <= 0.5) independently; one draw
    # gives the same law: salt where u < amount / 2, pepper where amount / 2 <= u < amount.
    u = ctx.rng.uniform(x.shape[1:])
    out = torch.where(u < amount / 2, torch.ones_like(x), x)
    return torch.where((u >= amount / 2) & (u < amount), torch.zeros_like(x), out)


def _speckle_noise(x, p, ctx):
    if p["sigma"] == 0:
        return x
    return (x + x * ctx.rng.normal(x.shape[1:], std=p["sigma"])).clamp(0, 1)


KERNELS: dict[str, Kernel] = {
    "gaussian_noise": _gaussian_noise,
    "shot_noise": _shot_noise,
    "impulse_noise": _impulse_noise,
    "speckle_noise": _speckle_noise,
}
