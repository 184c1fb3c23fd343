"""Blur kernels: Gaussian, defocus, motion, zoom and glass blur."""

from __future__ import annotations

from functools import lru_cache

import torch

from ..kinds import params_for
from .context import (
    SEED_MEMO,
    Kernel,
    image_memo,
    kernel_angles,
    memo_base,
    memo_matches,
    result_like,
    work,
)
from .filters import (
    conv_same,
    disk_kernel,
    gaussian_blur,
    good_fft_size,
    motion_blur_batch,
    pad,
    zoom_crop,
    zoom_key,
)


def _gaussian_blur(x, p, ctx):
    return gaussian_blur(x, p["sigma"]).clamp(0, 1)


# The disk of severity 5 (radius 10) is 21x21; smaller disks are 17x17 (see disk_kernel).
DEFOCUS_PAD = 10


def _defocus_blur(x, p, ctx):
    if p["radius"] <= 0:
        return x
    kernel = disk_kernel(p["radius"], p["alias_blur"], x.device)
    half = kernel.shape[-1] // 2
    if half > DEFOCUS_PAD:
        return conv_same(x, kernel, "reflect101").clamp_(0, 1)
    # The image's spectrum, padded for the largest disk, serves every severity (a smaller disk
    # reads only the inner rows of the same reflect-101 border; the FFT is long enough for none
    # to wrap around): made once per sweep instead of five times.
    h, w = x.shape[-2:]
    size = (good_fft_size(h + 2 * DEFOCUS_PAD), good_fft_size(w + 2 * DEFOCUS_PAD))

    def spectrum() -> torch.Tensor:
        return torch.fft.rfft2(pad(x, DEFOCUS_PAD, DEFOCUS_PAD, "reflect101"), s=size)

    image = image_memo("defocus_blur", ctx, x, ("spectrum", size), spectrum)
    # irfft2 in its two steps (the inverse FFT over rows, then the real inverse over columns:
    # what irfft2 computes, bit for bit on the CPU), each into a kept buffer: its own fresh
    # buffers and copies cost about a third of the call.
    disk = _disk_spectrum(p["radius"], p["alias_blur"], size, x.device)
    product = torch.mul(image, disk, out=work(1, image.shape, image.dtype, x.device))
    rows = torch.fft.ifft(product, dim=-2, out=work(2, image.shape, image.dtype, x.device))
    y = work(1, (*x.shape[:2], *size), x.dtype, x.device)
    torch.fft.irfft(rows, n=size[1], dim=-1, out=y)
    top = DEFOCUS_PAD + half
    # (a fresh result: a kept one here measured slower, the FFTs' freed buffers serve it)
    return y[..., top : top + h, top : top + w].clamp(0, 1)


@lru_cache(maxsize=16)
def _disk_spectrum(
    radius: float, alias_blur: float, size: tuple[int, int], device: torch.device
) -> torch.Tensor:
    """The disk's FFT at the padded image size: the same for every image of that size in a
    sweep (a full-size transform of the kernel, a quarter of each severity's FFT work)."""
    return torch.fft.rfft2(disk_kernel(radius, alias_blur, device), s=size)


def _motion_blur(x, p, ctx):
    if p["radius"] <= 0:
        return x
    angles = kernel_angles(ctx, x.shape[0], p["angle"], -45.0, 45.0)
    out = result_like(x)
    return motion_blur_batch(x, p["radius"], p["sigma"], angles, out=out).clamp_(0, 1)


def zoom_factors(max_zoom: float, step: float) -> list[float]:
    """``np.arange(1, max_zoom + step / 2, step)``: numpy's own values (it steps by
    ``(1 + step) - 1``), which decide ``round(crop * zoom)`` exactly as in ImageNet-C."""
    import numpy as np

    return [float(z) for z in np.arange(1.0, max_zoom + step / 2, step)]


ZoomKeys = tuple[tuple[int, int, int, int], ...]


@lru_cache(maxsize=64)
def _sweep_keys(h: int, w: int) -> tuple[ZoomKeys, ...]:
    """The zoom keys of severities 1-5, the order in which a sweep applies them."""
    out = []
    for s in range(1, 6):
        p = params_for("zoom_blur", s)
        out.append(tuple(zoom_key(h, w, z) for z in zoom_factors(p["max_zoom"], p["step"])))
    return tuple(out)


def _zoom_blur(x, p, ctx):
    zooms = zoom_factors(p["max_zoom"], p["step"])
    if len(zooms) <= 1:
        return x
    h, w = x.shape[-2:]
    keys = tuple(zoom_key(h, w, z) for z in zooms)
    # Channels-last: torch's bilinear resize of a crop is about 3x faster in that layout on
    # the CPU (identical values), and the zoomed copies are the whole cost of this kind. The
    # batch already is when the images are (apply.CHANNELS_LAST); the result keeps the batch's
    # layout.
    xl = x.contiguous(memory_format=torch.channels_last)
    layout = torch.channels_last if xl.data_ptr() == x.data_ptr() else torch.contiguous_format
    sweep = _sweep_keys(h, w)
    if keys not in sweep:  # not one of severities 1-5: nothing to hand on
        out = xl.clone()
        for k in keys:
            out += zoom_crop(xl, k)
        return (out / (len(keys) + 1)).clamp(0, 1).contiguous(memory_format=layout)
    # x itself (already channels-last) is not ours to keep: a hand-over keeps a copy of it
    owned = xl.data_ptr() != x.data_ptr()
    out = _shared_zoom_sum(xl, keys, sweep[sweep.index(keys) + 1 :], ctx, owned)
    return out.div_(len(keys) + 1).clamp_(0, 1).contiguous(memory_format=layout)


class _ZoomScratch:
    """Two buffers a call's crops are copied and resized into, one crop after the other: kept
    per thread (:func:`.context.work`), instead of two fresh buffers per crop (a fresh
    buffer's page faults cost about as much as its resize). Needs the ``out=`` form of the
    bilinear resize; without it (another torch), :func:`.filters.zoom_crop` allocates as
    before."""

    def __init__(self, xl: torch.Tensor, keys: ZoomKeys) -> None:
        b, c = xl.shape[:2]
        self.b, self.c = b, c
        big = max((k for k in keys if k[:2] != k[2:]), key=lambda k: k[2] * k[3], default=None)
        h, w = xl.shape[-2:]
        # Sized for any crop of the image (a resized crop has at most 2 more rows and columns
        # than the image at the kinds' zooms), so that the same per-thread buffers serve every
        # severity.
        n_out = max(b * c * big[2] * big[3] if big else 0, b * c * (h + 2) * (w + 2))
        self.crop = work(1, (b * c * h * w,), device=xl.device)
        self.out = work(2, (n_out,), device=xl.device)
        self.works = _UPSAMPLE_OUT is not None

    def _view(self, flat: torch.Tensor, rows: int, cols: int) -> torch.Tensor:
        # a channels-last [B, C, rows, cols] view of the first elements of a flat buffer
        return (
            flat[: self.b * self.c * rows * cols]
            .view(self.b, rows, cols, self.c)
            .permute(0, 3, 1, 2)
        )

    def zoom(self, xl: torch.Tensor, key: tuple[int, int, int, int]) -> torch.Tensor:
        ch, cw, sh, sw = key
        if not self.works or (sh, sw) == (ch, cw):
            return zoom_crop(xl, key)
        h, w = xl.shape[-2:]
        top, left = (h - ch) // 2, (w - cw) // 2
        crop = self._view(self.crop, ch, cw)
        crop.copy_(xl[..., top : top + ch, left : left + cw])
        out = self._view(self.out, sh, sw)
        try:
            _UPSAMPLE_OUT(crop, (sh, sw), True, None, None, out=out)
        except (RuntimeError, TypeError):
            self.works = False
            return zoom_crop(xl, key)
        return out[..., :h, :w]


# The out= form of F.interpolate(mode="bilinear") (a torch-internal name; absent -> None).
_UPSAMPLE_OUT = getattr(getattr(torch._C, "_nn", None), "upsample_bilinear2d", None)


def _shared_zoom_sum(
    xl: torch.Tensor, keys: ZoomKeys, later: tuple[ZoomKeys, ...], ctx, owned: bool
):
    """``xl + sum of its zooms``, handing partial sums on to the later severities of a sweep.

    The severities' zoom lists overlap (1.01-1.10 are severity 1's and 2's, 1.02-1.20 in steps
    of 0.02 severity 3's and 4's, ...), so while a severity resizes its crops, each later
    severity's own sum, in that severity's own order, is carried on for as long as the crops
    come in that order, and kept (``SEED_MEMO``, checked against the image itself) for when
    that severity is applied to the same images: a sweep resizes 24 crops for its five
    severities instead of 57. The sums are the same float operations in the same order as a
    fresh severity's, so the result is bit-identical whether or not anything was handed on.
    ``owned``: whether ``xl`` is this call's own copy (else the caller's batch, kept only as a
    copy)."""
    base = memo_base("zoom_blur", ctx, xl)
    seen = memo_matches(base, xl)  # other images: their hand-overs are dropped
    handed = SEED_MEMO.pop((*base, keys)) if seen else None
    out, start = (xl.clone(), 0) if handed is None else handed
    size = xl.numel() * xl.element_size()
    carried: dict[ZoomKeys, list] = {}
    twins: list[ZoomKeys] = []  # later sums that this one's equals: a copy of it at the end
    for t in later:
        entry = SEED_MEMO.pop((*base, t)) if seen else None
        done = 0 if entry is None else entry[1]
        if done == start and t[: len(keys)] == keys:
            twins.append(t)  # the same crops in the same order from the same start
        elif entry is not None:
            carried[t] = list(entry)
        elif SEED_MEMO.room("zoom_blur", size * (len(carried) + len(twins) + 2)):
            carried[t] = [xl.clone(), 0]
    identity = (*xl.shape[-2:], *xl.shape[-2:])
    scratch = _ZoomScratch(xl, keys[start:])
    for k in keys[start:]:
        y = xl if k == identity else scratch.zoom(xl, k)
        out += y
        for t, entry in carried.items():
            if entry[1] < len(t) and t[entry[1]] == k:
                entry[0] += y
                entry[1] += 1
    for t in twins:
        carried[t] = [out.clone(), len(keys)]
    kept = (*base, "input")  # the image the hand-overs were made from (a copy unless owned)
    if later and carried and (seen or SEED_MEMO.put(kept, xl if owned else xl.clone())):
        for t, (total, done) in carried.items():
            SEED_MEMO.put((*base, t), (total, done))
    elif not later:  # the last severity: nothing is left to hand on
        SEED_MEMO.pop((*base, "input"))
    return out


def _glass_blur(x, p, ctx):
    sigma, delta, iterations = p["sigma"], p["max_delta"], p["iterations"]
    b, c, h, w = x.shape
    if not (sigma > 0 and delta > 0 and iterations > 0):
        return _glass_blur_plain(x, sigma, delta, iterations, ctx)
    # A channels-last batch (apply.CHANNELS_LAST) stays so in the blurs (their padded copies
    # and depthwise convolutions are channels-last anyway); the gather runs on a plain layout
    # (about twice as fast), which the quantisation writes into a kept buffer: two layout
    # conversions per call instead of four, and the result in the batch's layout.
    cl = c > 1 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last)
    y = gaussian_blur(x, sigma, channels_last=cl)
    q = torch.clamp(y, 0, 1, out=work(1, (b, c, h, w), device=x.device))
    del y
    q.mul_(255).floor_().div_(255)  # np.uint8(...) truncation
    src = _shuffled_sources(ctx, b, h, w, delta, iterations, x.device)
    shuffled = work(2, (b, c, h * w), device=x.device)
    flat = q.view(b, c, h * w)
    for i in range(b):  # index_select with an int32 index: faster than an expanded gather
        for ch in range(c):
            torch.index_select(flat[i, ch], 0, src[i], out=shuffled[i, ch])
    out = gaussian_blur(shuffled.view(b, c, h, w), sigma, channels_last=cl)
    if out.data_ptr() == shuffled.data_ptr():  # a one-tap blur of one channel: no copy made
        out = out.clone()
    return out.clamp_(0, 1)


def _shuffled_sources(ctx, b: int, h: int, w: int, delta: int, iterations: int, device):
    """Vectorised stand-in for the sequential local swaps: every pixel takes the value at an
    offset drawn from numpy's randint(-delta, delta) range, per iteration. The iterations'
    source maps are composed on the (one-channel) index first, so the image is gathered once
    instead of once per iteration: ``[B, H * W]`` int32 (composed row by row with int32
    index_select, about 2x an int64 gather)."""
    src = _shuffle_index(ctx, h, w, delta, device)
    for _ in range(iterations - 1):
        step = _shuffle_index(ctx, h, w, delta, device)
        src = torch.stack([row.index_select(0, idx) for row, idx in zip(src, step, strict=True)])
    return src


def _glass_blur_plain(x, sigma, delta, iterations, ctx):
    """Glass blur without a blur or without shuffling (not one of the kind's severities)."""
    b, c, h, w = x.shape
    y = gaussian_blur(x, sigma) if sigma > 0 else x.clone()
    y.clamp_(0, 1).mul_(255).floor_().div_(255)  # np.uint8(...) truncation
    if delta > 0 and iterations > 0:
        src = _shuffled_sources(ctx, b, h, w, delta, iterations, x.device).long()
        y = y.reshape(b, c, h * w).gather(2, src.view(b, 1, h * w).expand(b, c, h * w))
        y = y.view(b, c, h, w)
    return (gaussian_blur(y, sigma) if sigma > 0 else y).clamp_(0, 1)


@lru_cache(maxsize=16)
def _offset_tables(h: int, w: int, delta: int, device: str) -> tuple[torch.Tensor, torch.Tensor]:
    """For one code per pixel, ``code = (dy + delta) * 2 delta + (dx + delta)``: the flat index of
    ``(row + dy, col + dx)`` in the image padded by ``delta`` (``offsets[code]`` added to the
    pixel's own padded index), and the padded -> clamped original index map, so that a source
    index is two table reads instead of clamping rows and columns per pixel. The offsets are
    int32 (read with an int32 code, the padded index is int32 too: about 5x the int64 reads and
    addition), and so is the map (its result is read as an int32 index)."""
    span = torch.arange(-delta, delta, device=device, dtype=torch.int32)
    wp = w + 2 * delta
    offsets = (span.view(-1, 1) * wp + span.view(1, -1)).flatten()
    rows = (torch.arange(-delta, h + delta, device=device).clamp(0, h - 1) * w).view(-1, 1)
    cols = torch.arange(-delta, w + delta, device=device).clamp(0, w - 1).view(1, -1)
    return offsets, (rows + cols).flatten().to(torch.int32)


@lru_cache(maxsize=16)
def _padded_base(h: int, w: int, delta: int, device: str) -> torch.Tensor:
    r = torch.arange(delta, h + delta, device=device).view(-1, 1) * (w + 2 * delta)
    base = r + torch.arange(delta, w + delta, device=device).view(1, -1)
    return base.flatten().to(torch.int32)


def _shuffle_index(ctx, h: int, w: int, delta: int, device: torch.device) -> torch.Tensor:
    """``[B, H * W]`` source index of one shuffling iteration: offsets uniform in
    ``[-delta, delta)`` on each axis, clamped to the image."""
    dev = str(device)
    offsets, to_image = _offset_tables(h, w, delta, dev)
    codes = ctx.rng.codes(4 * delta * delta, (h * w,), torch.int32).view(-1)
    # index_select: about 2.5x ``take`` on CPUs (no per-element bounds wrap-around)
    padded = offsets.index_select(0, codes).view(-1, h * w).add_(_padded_base(h, w, delta, dev))
    return to_image.index_select(0, padded.view(-1)).view(-1, h * w)


CHANNELS_LAST = frozenset({"zoom_blur", "glass_blur"})  # see apply._wants_channels_last
KERNELS: dict[str, Kernel] = {
    "gaussian_blur": _gaussian_blur,
    "defocus_blur": _defocus_blur,
    "motion_blur": _motion_blur,
    "zoom_blur": _zoom_blur,
    "glass_blur": _glass_blur,
}
