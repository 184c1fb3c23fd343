"""Noise kernels: Gaussian, shot (Poisson), impulse (salt and pepper) and speckle noise."""

from __future__ import annotations

import math
from functools import lru_cache

import torch

from .context import SEED_MEMO, Ctx, Kernel, result_like, work

LEVELS = 256  # 8-bit images: the shot-noise rates take one of 256 values per severity
TAIL = 1e-15  # Poisson mass left out of the alias tables (beyond K), renormalised away


def _draws(kind: str, ctx: Ctx, shape: torch.Size, draw: str) -> torch.Tensor:
    """The standard normal (``draw="normal"``) or uniform draws of a kind's images: a function
    of the seeds and the shape only, the same at every severity (which only scales them or
    sets a threshold), so a sweep draws them once instead of five times (``SEED_MEMO``).
    Callers must not modify the returned tensor."""
    key = (kind, "draws", tuple(ctx.seeds), tuple(shape), str(ctx.device))
    return SEED_MEMO.get(key, lambda: getattr(ctx.rng, draw)(shape))


def _gaussian_noise(x, p, ctx):
    if p["sigma"] == 0:
        return x
    z = _draws("gaussian_noise", ctx, x.shape[1:], "normal")
    return torch.mul(z, p["sigma"]).add_(x).clamp_(0, 1)


@lru_cache(maxsize=32)
def poisson_alias_tables(photons: float, device: str) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Walker/Vose alias tables of Poisson(l * photons / 255) for the 256 levels ``l``:
    ``(prob [256 * K], alias [256 * K], K)`` (float32; aliases are whole numbers), row ``l``
    at ``l * K``. Sampling
    a row takes one uniform draw and two table reads, exactly the Poisson law (truncated where
    less than ``TAIL`` of the mass is left), instead of torch.poisson's per-element rejection
    sampler (about 10x the cost of drawing a normal)."""
    lam_max = photons
    k_max = int(math.ceil(lam_max + 12.0 * math.sqrt(lam_max) + 12.0))
    while k_max > 0 and _poisson_sf(lam_max, k_max) > TAIL:
        k_max += 8
    ks = torch.arange(k_max, dtype=torch.float64)
    lam = torch.arange(LEVELS, dtype=torch.float64) * photons / (LEVELS - 1)
    logp = ks * torch.log(lam.clamp(min=1e-300))[:, None] - lam[:, None] - torch.lgamma(ks + 1)
    pmf = torch.exp(logp)
    pmf[0] = 0.0
    pmf[0, 0] = 1.0  # rate 0: always 0 photons
    pmf = pmf / pmf.sum(1, keepdim=True)
    prob = torch.ones(LEVELS, k_max, dtype=torch.float64)
    alias = torch.arange(k_max).repeat(LEVELS, 1)
    for row in range(LEVELS):
        _vose(pmf[row].tolist(), prob[row], alias[row])
    flat_prob = prob.flatten().to(device=device, dtype=torch.float32)
    return flat_prob, alias.flatten().to(device=device, dtype=torch.float32), k_max


def _poisson_sf(lam: float, k: int) -> float:
    """P(X >= k) for X ~ Poisson(lam), summed in logs (k well above lam)."""
    total, term = 0.0, math.exp(k * math.log(lam) - lam - math.lgamma(k + 1)) if lam > 0 else 0.0
    i = k
    while term > 1e-300 and i < k + 1000:
        total += term
        i += 1
        term *= lam / i
    return total


def _vose(pmf: list[float], prob: torch.Tensor, alias: torch.Tensor) -> None:
    """Fill one row of alias tables (Vose's method) from a normalised pmf."""
    n = len(pmf)
    scaled = [q * n for q in pmf]
    small = [i for i, q in enumerate(scaled) if q < 1.0]
    large = [i for i, q in enumerate(scaled) if q >= 1.0]
    p_out, a_out = [1.0] * n, list(range(n))
    while small and large:
        s, g = small.pop(), large.pop()
        p_out[s], a_out[s] = scaled[s], g
        scaled[g] -= 1.0 - scaled[s]
        (small if scaled[g] < 1.0 else large).append(g)
    prob.copy_(torch.tensor(p_out, dtype=torch.float64))
    alias.copy_(torch.tensor(a_out, dtype=torch.int64))


def _shot_noise(x, p, ctx):
    c = p["photons"]
    if c is None:
        return x
    prob, alias, k = poisson_alias_tables(float(c), str(x.device))
    # The rate of a pixel is its 8-bit level's (the images are 8-bit; for others this moves the
    # mean by at most half a level). One uniform per pixel: its integer part (times K) picks
    # the column, its fraction decides between the column and its alias (float32: the law is
    # exact to about 1e-5 in total variation). Every index is below 2^24, exact in float32.
    # Few and same-sized temporaries, in place where possible: a fresh large buffer costs its
    # page faults (on a CPU, more than the arithmetic), and int64 or mixed-size temporaries
    # defeat the allocator's reuse of freed float buffers. index_select with an int32 index on
    # the flat tables: about 2.5x ``take``.
    dev = x.device
    level = torch.clamp(x, 0, 1, out=work(1, x.shape, device=dev))
    level.mul_(LEVELS - 1).round_().mul_(k)
    draws = _draws("shot_noise", ctx, x.shape[1:], "uniform")
    u = torch.mul(draws, k, out=work(2, x.shape, device=dev))
    column = torch.floor(u, out=result_like(u))  # becomes the result
    u.sub_(column)  # the fraction: column or alias
    index = work(1, (x.numel(),), torch.int32, dev)
    index.copy_(level.add_(column).view(-1))
    taken = torch.index_select(prob, 0, index, out=level.view(-1)).view_as(u)
    keep = u.lt_(taken)  # 1.0 where the column is kept
    alias_col = torch.index_select(alias, 0, index, out=taken.view(-1)).view_as(u)
    counts = column.sub_(alias_col).mul_(keep).add_(alias_col)
    return counts.div_(c).clamp_(0, 1)


def _impulse_noise(x, p, ctx):
    amount = p["amount"]
    if amount == 0:
        return x
    # skimage draws "flipped" (u1 <= amount) and "salted" (u2 <= 0.5) independently; one draw
    # gives the same law: salt where u < amount / 2, pepper where amount / 2 <= u < amount.
    # Scalar fills, no ones/zeros buffers: a fresh large buffer costs its page faults.
    u = _draws("impulse_noise", ctx, x.shape[1:], "uniform")
    out = result_like(x).copy_(x).masked_fill_(u < amount / 2, 1.0)
    return out.masked_fill_((u >= amount / 2).logical_and_(u < amount), 0.0)


def _speckle_noise(x, p, ctx):
    if p["sigma"] == 0:
        return x
    return ctx.rng.normal(x.shape[1:], std=p["sigma"]).mul_(x).add_(x).clamp_(0, 1)


KERNELS: dict[str, Kernel] = {
    "gaussian_noise": _gaussian_noise,
    "shot_noise": _shot_noise,
    "impulse_noise": _impulse_noise,
    "speckle_noise": _speckle_noise,
}
