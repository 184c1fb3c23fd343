"""Procedural textures: ImageNet-C's plasma fractal (fog) and a stand-in for its frost
photographs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .context import Rng
from .filters import motion_blur_batch, next_pow2


def plasma_draws(rng: Rng, mapsize: int) -> tuple[torch.Tensor, ...]:
    """The uniform draws of :func:`plasma_fractal`, level by level (``[B, 3, n, n]`` in
    [-1, 1)): the same for every decay."""
    out, n = [], 1
    while n < mapsize:
        out.append(rng.uniform((3, n, n), -1.0, 1.0))
        n *= 2
    return tuple(out)


def plasma_fractal(
    rng: Rng, mapsize: int, decay: float, crop: tuple[int, int] | None = None,
    draws: tuple[torch.Tensor, ...] | None = None,
) -> torch.Tensor:  # fmt: skip
    """ImageNet-C's diamond-square height map, ``[B, mapsize, mapsize]`` in [0, 1], normalised
    by the whole map's range; ``crop=(h, w)`` returns only the top-left ``[B, h, w]``;
    ``draws``: :func:`plasma_draws` made before (left unchanged), instead of drawing them.

    Same recursion as ``imagecorruptions.plasma_fractal`` (square and diamond means of the
    coarser lattice plus ``wibble * U(-wibble, wibble)``, wrap-around neighbours, ``wibble /=
    decay`` per level), built level by level as contiguous lattices (the means and rolls run
    on contiguous memory) that interleave into the next one.
    """
    b = len(rng.gens)
    ul = torch.zeros(b, 1, 1, device=rng.device)
    draws = plasma_draws(rng, mapsize) if draws is None else draws
    wibble, n = 100.0, 1
    for i, level in enumerate(draws):
        amp = wibble * wibble
        # The same sums in the same order, in place where a buffer is free (fewer fresh
        # buffers: on a CPU their page faults cost more than the additions).
        noise = level * amp
        up, left = ul.roll(-1, dims=1), ul.roll(-1, dims=2)
        sq = ul + up
        dr = sq.add_(sq.roll(-1, dims=2)).div_(4).add_(noise[:, 0])  # cell centres
        d1 = (dr + dr.roll(1, dims=1)).add_(ul).add_(left).div_(4).add_(noise[:, 1])
        d2 = (dr + dr.roll(1, dims=2)).add_(ul).add_(up).div_(4).add_(noise[:, 2])
        if i == len(draws) - 1 and crop is not None:
            return _last_level_cropped((ul, d1, d2, dr), crop)
        # Interleave into the next lattice by strided copies into one buffer: 6x stacking
        # along a new last dimension (torch.cat copies one element at a time there).
        nxt = torch.empty(b, n, 2, n, 2, device=rng.device)
        nxt[:, :, 0, :, 0] = ul  # rows on the coarse lattice: corner, edge centre
        nxt[:, :, 0, :, 1] = d1
        nxt[:, :, 1, :, 0] = d2  # rows between: edge centre, cell centre
        nxt[:, :, 1, :, 1] = dr
        ul = nxt.view(b, 2 * n, 2 * n)
        n *= 2
        wibble /= decay
    flat = ul.flatten(1)
    lo = flat.amin(1).view(-1, 1, 1)
    span = (flat.amax(1).view(-1, 1, 1) - lo).clamp_min(1e-12)
    if crop is not None:
        ul = ul[:, : crop[0], : crop[1]]
    return (ul - lo).div_(span)


def _last_level_cropped(parts: tuple[torch.Tensor, ...], crop: tuple[int, int]) -> torch.Tensor:
    """The finest level's four lattices (corners, the two edge centres, cell centres) as the
    normalised top-left ``crop`` of the map they interleave into: the whole map's range is the
    range of the four (min and max are exact, so the same numbers), and only the cropped part
    is interleaved (at 640x480 of a 1024x1024 map, 30% of the copies)."""
    ul, d1, d2, dr = parts
    b = ul.shape[0]
    lo = torch.stack([p.flatten(1).amin(1) for p in parts]).amin(0).view(-1, 1, 1)
    hi = torch.stack([p.flatten(1).amax(1) for p in parts]).amax(0).view(-1, 1, 1)
    span = (hi - lo).clamp_min(1e-12)
    h, w = crop
    rows, cols = (h + 1) // 2, (w + 1) // 2
    nxt = torch.empty(b, rows, 2, cols, 2, device=ul.device)
    nxt[:, :, 0, :, 0] = ul[:, :rows, :cols]
    nxt[:, :, 0, :, 1] = d1[:, :rows, :cols]
    nxt[:, :, 1, :, 0] = d2[:, :rows, :cols]
    nxt[:, :, 1, :, 1] = dr[:, :rows, :cols]
    return (nxt.view(b, 2 * rows, 2 * cols)[:, :h, :w] - lo).div_(span)


FROST_TINT = (0.90, 0.98, 1.07)


def frost_texture(rng: Rng, h: int, w: int, channels: int) -> torch.Tensor:
    """A procedural stand-in for ImageNet-C's frost photographs, ``[B, C, h, w]`` in [0, 1].

    Cloudy plasma (low frequencies) plus a rough plasma grain and short crystal streaks, tinted
    blue-white. Calibrated to the shipped photographs' statistics: mean grey about 0.65, standard
    deviation about 0.1, mean absolute neighbour difference about 0.04, blue > green > red.
    """
    mapsize = next_pow2(max(h, w))
    # the clouds are smooth: half resolution, upsampled
    hh, hw = (h + 1) // 2, (w + 1) // 2
    cloud = plasma_fractal(rng, max(1, mapsize // 2), 1.7, (hh, hw)).unsqueeze(1)
    cloud = F.interpolate(cloud, size=(h, w), mode="bilinear", align_corners=False)[:, 0]
    grain = plasma_fractal(rng, mapsize, 1.05, (h, w))
    seeds = (rng.uniform((1, h, w)) > 0.985).to(torch.float32)
    angles = rng.uniform((), 0.0, 180.0)
    streaks = motion_blur_batch(seeds, 4, 3.0, angles)[:, 0]
    streaks = streaks / streaks.flatten(1).amax(1).clamp_min(1e-6).view(-1, 1, 1)
    tex = 0.46 + 0.4 * cloud + 0.6 * (grain - grain.mean((1, 2), keepdim=True)) + 0.35 * streaks
    tint = torch.tensor(FROST_TINT[:channels] if channels == 3 else (1.0,), device=tex.device)
    return (tex.unsqueeze(1) * tint.view(1, -1, 1, 1)).clamp(0, 1)
