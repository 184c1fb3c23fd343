"""Batched torch kernels behind every perturbation kind.

Each kernel takes a ``[B, C, H, W]`` float batch in [0, 1] on any device plus the kind's parameter
dict and returns a batch of the same shape (geometric kernels also return the coordinate map).
Images of different sizes are grouped by size by ``apply_kind``; random numbers come from one
``torch.Generator`` per image (see ``Rng``), so a batch equals its images processed one by one.

Large or per-image kernels (defocus disk, motion-blur lines) are applied with FFT convolution on
explicitly padded images, which reproduces the border modes of the reference implementations:
``replicate`` (skimage ``gaussian`` mode 'nearest', numpy edge shifts), ``reflect101``
(OpenCV's default BORDER_REFLECT_101) and ``symmetric`` (scipy 'reflect').
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import torch
import torch.nn.functional as F

from pytest_kpmodel.robustness.geometry import AffineTransform

# =============================================================== randomness
_MASK64 = (1 << 64) - 1


def _splitmix64(x: int) -> int:
    x = (x + 0x9E3779B97F4A7C15) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


def image_seed(seed: int, index: int, salt: str) -> int:
    """A 63-bit seed for image ``index`` of a perturbation with ``seed`` (stable across runs)."""
    h = _splitmix64(seed & _MASK64)
    h = _splitmix64(h ^ (index & _MASK64))
    for ch in salt.encode():
        h = _splitmix64(h ^ ch)
    return h >> 1


class Rng:
    """One generator per image; every draw returns a ``[B, *shape]`` tensor."""

    def __init__(self, seeds: Sequence[int], device: torch.device) -> None:
        self.device = device
        self.gens = [torch.Generator(device=device).manual_seed(int(s)) for s in seeds]

    def normal(self, shape: Sequence[int], mean: float = 0.0, std: float = 1.0) -> torch.Tensor:
        out = torch.stack(
            [torch.randn(tuple(shape), generator=g, device=self.device) for g in self.gens]
        )
        return out * std + mean if (mean, std) != (0.0, 1.0) else out

    def uniform(self, shape: Sequence[int], low: float = 0.0, high: float = 1.0) -> torch.Tensor:
        out = torch.stack(
            [torch.rand(tuple(shape), generator=g, device=self.device) for g in self.gens]
        )
        return out * (high - low) + low if (low, high) != (0.0, 1.0) else out

    def randint(self, low: int, high: int, shape: Sequence[int]) -> torch.Tensor:
        return torch.stack(
            [
                torch.randint(low, high, tuple(shape), generator=g, device=self.device)
                for g in self.gens
            ]
        )

    def poisson(self, rates: torch.Tensor) -> torch.Tensor:
        return torch.stack(
            [torch.poisson(r, generator=g) for r, g in zip(rates, self.gens, strict=True)]
        )


@dataclass
class Ctx:
    """What a kernel may need besides the batch: randomness and the people in each image."""

    seeds: list[int]
    device: torch.device
    boxes: list[torch.Tensor | None] | None = None
    _rng: Rng | None = None

    @property
    def rng(self) -> Rng:
        if self._rng is None:
            self._rng = Rng(self.seeds, self.device)
        return self._rng


# =============================================================== entry point
def apply_kind(
    kind: str,
    params: dict[str, Any],
    images: Sequence[torch.Tensor],
    *,
    seed: int,
    indices: Sequence[int],
    boxes: Sequence[torch.Tensor | None] | None = None,
) -> tuple[list[torch.Tensor], list[AffineTransform | None]]:
    """Apply one kind to a list of CHW images (grouped by size, batched per group)."""
    fn = KERNELS[kind]
    out: list[torch.Tensor | None] = [None] * len(images)
    transforms: list[AffineTransform | None] = [None] * len(images)
    groups: dict[tuple[Any, ...], list[int]] = {}
    for i, img in enumerate(images):
        if img.ndim != 3 or not img.is_floating_point():
            raise ValueError(
                f"image {i}: expected a CHW float tensor in [0, 1], got "
                f"{img.dtype} of shape {tuple(img.shape)}"
            )
        groups.setdefault((tuple(img.shape), img.device, img.dtype), []).append(i)
    for (_, device, dtype), members in groups.items():
        x = torch.stack([images[i] for i in members]).to(torch.float32)
        ctx = Ctx(
            seeds=[image_seed(seed, indices[i], kind) for i in members],
            device=device,
            boxes=None if boxes is None else [boxes[i] for i in members],
        )
        with torch.no_grad():
            result = fn(x, params, ctx)
        y, t = result if isinstance(result, tuple) else (result, None)
        y = y.to(dtype)
        for j, i in enumerate(members):
            out[i] = y[j]
            transforms[i] = t
    return [o for o in out if o is not None], transforms


# =============================================================== helpers
def _pad_index(n: int, p: int, mode: str, device: torch.device) -> torch.Tensor:
    i = torch.arange(-p, n + p, device=device)
    if mode == "replicate" or n == 1:
        return i.clamp(0, n - 1)
    if mode == "reflect101":  # d c b | a b c d | c b a  (OpenCV default, torch 'reflect')
        period = 2 * (n - 1)
        i = i.remainder(period)
        return torch.where(i > n - 1, period - i, i)
    if mode == "symmetric":  # c b a | a b c d | d c b  (scipy 'reflect')
        period = 2 * n
        i = i.remainder(period)
        return torch.where(i > n - 1, period - 1 - i, i)
    raise ValueError(f"unknown padding mode {mode!r}")


def pad(x: torch.Tensor, ph: int, pw: int, mode: str) -> torch.Tensor:
    """Pad the last two dims by ``ph`` rows and ``pw`` columns on each side."""
    h, w = x.shape[-2:]
    if (
        (ph or pw)
        and x.ndim == 4
        and (mode == "replicate" or (mode == "reflect101" and ph < h and pw < w))
    ):
        return F.pad(x, (pw, pw, ph, ph), mode="replicate" if mode == "replicate" else "reflect")
    if ph:
        x = x.index_select(-2, _pad_index(h, ph, mode, x.device))
    if pw:
        x = x.index_select(-1, _pad_index(w, pw, mode, x.device))
    return x


@lru_cache(maxsize=256)
def _good_fft_size(n: int) -> int:
    """Smallest m >= n whose prime factors are 2, 3, 5 and 7 (fast for pocketfft and cuFFT)."""
    m = n
    while True:
        r = m
        for p in (2, 3, 5, 7):
            while r % p == 0:
                r //= p
        if r == 1:
            return m
        m += 1


def fft_conv(x: torch.Tensor, kernel: torch.Tensor, mode: str) -> torch.Tensor:
    """Same-size 2-D convolution of ``[B, C, H, W]`` with ``[1 or B, kh, kw]`` (odd) kernels,
    centred, after padding the image with ``mode``."""
    h, w = x.shape[-2:]
    kh, kw = kernel.shape[-2:]
    ph, pw = kh // 2, kw // 2
    xp = pad(x, ph, pw, mode)
    fh, fw = _good_fft_size(xp.shape[-2]), _good_fft_size(xp.shape[-1])
    spectrum = torch.fft.rfft2(xp, s=(fh, fw))
    spectrum *= torch.fft.rfft2(kernel.to(x.dtype), s=(fh, fw)).unsqueeze(1)
    y = torch.fft.irfft2(spectrum, s=(fh, fw))
    return y[..., 2 * ph : 2 * ph + h, 2 * pw : 2 * pw + w].contiguous()


def conv_same(x: torch.Tensor, kernel: torch.Tensor, mode: str) -> torch.Tensor:
    """Depthwise same-size convolution with one 2-D kernel; direct for small kernels."""
    kh, kw = kernel.shape[-2:]
    if kh * kw > 81:
        return fft_conv(x, kernel.reshape(1, kh, kw), mode)
    b, c, h, w = x.shape
    xp = pad(x.reshape(b * c, 1, h, w), kh // 2, kw // 2, mode)
    k = kernel.flip(-2, -1).reshape(1, 1, kh, kw).to(x.dtype)  # conv2d correlates
    return F.conv2d(xp, k).reshape(b, c, h, w)


def gaussian_kernel1d(sigma: float, truncate: float, device: torch.device) -> torch.Tensor:
    """scipy.ndimage's Gaussian taps: radius ``int(truncate * sigma + 0.5)``."""
    radius = int(truncate * float(sigma) + 0.5)
    t = torch.arange(-radius, radius + 1, device=device, dtype=torch.float64)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    return (k / k.sum()).to(torch.float32)


SHIFT_SUM_MAX_TAPS = 17


def _shift_sum(x: torch.Tensor, k: torch.Tensor, dim: int, mode: str) -> torch.Tensor:
    """1-D same-size convolution along ``dim`` (-2 or -1) with a symmetric kernel, as a sum of
    shifted slices (far faster than a single-channel conv2d on CPUs)."""
    r = k.numel() // 2
    n = x.shape[dim]
    xp = pad(x, r, 0, mode) if dim == -2 else pad(x, 0, r, mode)
    taps = k.tolist()
    out = xp.narrow(dim, r, n) * taps[r]
    for i in range(1, r + 1):
        out += (xp.narrow(dim, r - i, n) + xp.narrow(dim, r + i, n)) * taps[r + i]
    return out


def separable_conv(x: torch.Tensor, ky: torch.Tensor, kx: torch.Tensor, mode: str) -> torch.Tensor:
    """Same-size separable convolution with symmetric kernels, column pass then row pass:
    shifted sums for short kernels, one FFT convolution with the outer product otherwise."""
    if max(ky.numel(), kx.numel()) > SHIFT_SUM_MAX_TAPS:
        return fft_conv(x, torch.outer(ky, kx).unsqueeze(0), mode)
    y = x
    if ky.numel() > 1:
        y = _shift_sum(y, ky.to(y.dtype), -2, mode)
    if kx.numel() > 1:
        y = _shift_sum(y, kx.to(y.dtype), -1, mode)
    return y


def gaussian_blur(
    x: torch.Tensor, sigma: float | tuple[float, float], mode: str = "replicate",
    truncate: float = 4.0,
) -> torch.Tensor:  # fmt: skip
    """skimage.filters.gaussian: per-axis sigma (rows, columns), default mode 'nearest'."""
    sy, sx = (sigma, sigma) if isinstance(sigma, int | float) else sigma
    if sy <= 0 and sx <= 0:
        return x
    one = torch.ones(1, device=x.device)
    ky = gaussian_kernel1d(sy, truncate, x.device) if sy > 0 else one
    kx = gaussian_kernel1d(sx, truncate, x.device) if sx > 0 else one
    return separable_conv(x, ky, kx, mode)


def to_gray(x: torch.Tensor) -> torch.Tensor:
    """ITU-R 601 luma (OpenCV RGB2GRAY), ``[B, 1, H, W]``."""
    if x.shape[1] == 1:
        return x
    w = torch.tensor([0.299, 0.587, 0.114], device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    return (x[:, :3] * w).sum(1, keepdim=True)


def clipped_zoom(x: torch.Tensor, zoom: float) -> torch.Tensor:
    """ImageNet-C's clipped_zoom: centre crop of ceil(n / zoom), scipy ``zoom(order=1)`` back
    (corner-aligned linear interpolation to ``round(crop * zoom)``), top-left ``n`` kept."""
    h, w = x.shape[-2:]
    ch, cw = math.ceil(h / zoom), math.ceil(w / zoom)
    top, left = (h - ch) // 2, (w - cw) // 2
    crop = x[..., top : top + ch, left : left + cw]
    size = (int(round(ch * zoom)), int(round(cw * zoom)))
    if size == (ch, cw):
        return crop[..., :h, :w]
    y = F.interpolate(crop, size=size, mode="bilinear", align_corners=True)
    return y[..., :h, :w]


def plasma_fractal(
    rng: Rng, mapsize: int, decay: float, crop: tuple[int, int] | None = None
) -> torch.Tensor:
    """ImageNet-C's diamond-square height map, ``[B, mapsize, mapsize]`` in [0, 1], normalised
    by the whole map's range; ``crop=(h, w)`` returns only the top-left ``[B, h, w]``.

    Same recursion as ``imagecorruptions.plasma_fractal`` (square and diamond means of the
    coarser lattice plus ``wibble * U(-wibble, wibble)``, wrap-around neighbours, ``wibble /=
    decay`` per level), built level by level as contiguous lattices that interleave into the
    next one, which is much faster than strided writes into the full map.
    """
    b = len(rng.gens)
    ul = torch.zeros(b, 1, 1, device=rng.device)
    wibble, n = 100.0, 1
    while n < mapsize:
        amp = wibble * wibble
        noise = rng.uniform((3, n, n), -1.0, 1.0)
        sq = ul + ul.roll(-1, dims=1)
        dr = (sq + sq.roll(-1, dims=2)) / 4 + amp * noise[:, 0]  # cell centres
        d1 = (dr + dr.roll(1, dims=1) + ul + ul.roll(-1, dims=2)) / 4 + amp * noise[:, 1]
        d2 = (dr + dr.roll(1, dims=2) + ul + ul.roll(-1, dims=1)) / 4 + amp * noise[:, 2]
        top = torch.stack((ul, d1), dim=-1)  # rows on the coarse lattice: corner, edge centre
        bottom = torch.stack((d2, dr), dim=-1)  # rows between: edge centre, cell centre
        ul = torch.stack((top, bottom), dim=2).reshape(b, 2 * n, 2 * n)
        n *= 2
        wibble /= decay
    flat = ul.flatten(1)
    lo = flat.amin(1).view(-1, 1, 1)
    span = (flat.amax(1).view(-1, 1, 1) - lo).clamp_min(1e-12)
    if crop is not None:
        ul = ul[:, : crop[0], : crop[1]]
    return (ul - lo) / span


def _next_pow2(n: int) -> int:
    return 1 if n == 0 else 2 ** (n - 1).bit_length()


def motion_kernels(radius: int, sigma: float, angles_deg: torch.Tensor) -> torch.Tensor:
    """ImageNet-C's shift-and-add motion blur as explicit kernels ``[B, 4r+1, 4r+1]``.

    Tap ``i`` (weight ``exp(-i^2 / 2 sigma^2)``, normalised) shifts by
    ``(-ceil(i cos a - 0.5), -ceil(i sin a - 0.5))``; shifts replicate the edge, i.e. the
    convolution runs on an edge-replicated image.
    """
    width = 2 * radius + 1
    i = torch.arange(width, dtype=torch.float64, device=angles_deg.device)
    weights = torch.exp(-(i**2) / (2 * sigma**2))
    weights = weights / weights.sum()
    a = torch.deg2rad(angles_deg.to(torch.float64)).unsqueeze(1)
    dy = -torch.ceil(i * torch.sin(a) - 0.5).long()
    dx = -torch.ceil(i * torch.cos(a) - 0.5).long()
    size = 2 * (width - 1) + 1
    c = width - 1
    b = angles_deg.shape[0]
    k = torch.zeros(b, size * size, dtype=torch.float64, device=angles_deg.device)
    flat = (c + dy) * size + (c + dx)
    k.scatter_add_(1, flat, weights.expand(b, -1).contiguous())
    return k.view(b, size, size).to(torch.float32)


def motion_blur_batch(
    x: torch.Tensor, radius: int, sigma: float, angles_deg: torch.Tensor
) -> torch.Tensor:
    if radius <= 0:
        return x
    return fft_conv(x, motion_kernels(radius, sigma, angles_deg), "replicate")


def _angles(ctx: Ctx, n: int, angle: float | None, low: float, high: float) -> torch.Tensor:
    if angle is None:
        return ctx.rng.uniform((), low, high)
    return torch.full((n,), float(angle), device=ctx.device)


# =============================================================== photometric
def _brightness(x, p, ctx):
    # skimage rgb2hsv -> V += delta -> hsv2rgb keeps hue and saturation, so every channel scales
    # by V'/V (and black becomes grey V').
    v = x.amax(1, keepdim=True)
    v2 = (v + p["delta"]).clamp(0, 1)
    scaled = x * (v2 / v.clamp_min(1e-12))
    return torch.where(v > 0, scaled, v2.expand_as(x)).clamp(0, 1)


def _contrast(x, p, ctx):
    m = x.mean(dim=(2, 3), keepdim=True)
    return ((x - m) * p["factor"] + m).clamp(0, 1)


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


# =============================================================== noise
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


# =============================================================== blur
def _gaussian_blur(x, p, ctx):
    return gaussian_blur(x, p["sigma"]).clamp(0, 1)


def disk_kernel(radius: float, alias_blur: float, device: torch.device) -> torch.Tensor:
    """ImageNet-C's anti-aliased disk: a binary disk on a 17x17 (or 2r+1) grid, normalised,
    then ``cv2.GaussianBlur`` with a 3x3 (5x5 when r > 8) kernel and reflect-101 borders."""
    if radius <= 8:
        half, ksize = 8, 3
    else:
        half, ksize = math.ceil(radius), 5
    t = torch.arange(-half, half + 1, dtype=torch.float64, device=device)
    yy, xx = torch.meshgrid(t, t, indexing="ij")
    disk = ((xx**2 + yy**2) <= radius**2).to(torch.float64)
    disk = disk / disk.sum()
    g = torch.arange(ksize, dtype=torch.float64, device=device) - (ksize - 1) / 2
    g = torch.exp(-(g**2) / (2 * alias_blur**2))
    g = g / g.sum()
    blurred = separable_conv(disk.view(1, 1, *disk.shape), g, g, "reflect101")
    return blurred.view(disk.shape).to(torch.float32)


def _defocus_blur(x, p, ctx):
    if p["radius"] <= 0:
        return x
    kernel = disk_kernel(p["radius"], p["alias_blur"], x.device)
    return conv_same(x, kernel, "reflect101").clamp(0, 1)


def _motion_blur(x, p, ctx):
    if p["radius"] <= 0:
        return x
    angles = _angles(ctx, x.shape[0], p["angle"], -45.0, 45.0)
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
    out = x.clone()
    for z in zooms:
        out += clipped_zoom(x, z)
    return (out / (len(zooms) + 1)).clamp(0, 1)


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


# =============================================================== digital
def _jpeg_compression(x, p, ctx):
    quality = int(min(max(p["quality"], 1), 100))
    u8 = (x.clamp(0, 1) * 255).round().to(torch.uint8)
    channels = u8.shape[1]
    if channels not in (1, 3):
        raise ValueError(f"jpeg_compression needs 1 or 3 channels, got {channels}")
    if u8.is_cuda:
        try:  # nvjpeg round trip on the device
            import warnings

            from torchvision.io import decode_jpeg, encode_jpeg

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                decoded = decode_jpeg(encode_jpeg(list(u8), quality=quality), device=u8.device)
            return torch.stack(decoded).to(x.dtype) / 255
        except (ImportError, RuntimeError, NotImplementedError):
            pass  # no nvjpeg: PIL on the CPU below
    return _pil_jpeg(u8.cpu(), quality).to(x.device).to(x.dtype).div_(255)


def _pil_jpeg(u8: torch.Tensor, quality: int) -> torch.Tensor:
    """PIL's libjpeg round trip, exactly what imagecorruptions does (baseline, 4:2:0)."""
    import io

    import numpy as np
    from PIL import Image

    out = []
    for arr in u8.permute(0, 2, 3, 1).contiguous().numpy():
        pil = Image.fromarray(arr[..., 0] if arr.shape[2] == 1 else arr)
        buf = io.BytesIO()
        pil.save(buf, "JPEG", quality=quality)
        buf.seek(0)
        back = Image.open(buf)
        back.load()
        if back.mode != pil.mode:
            back = back.convert(pil.mode)
        a = np.array(back)
        out.append(torch.from_numpy(a[..., None] if a.ndim == 2 else a))
    return torch.stack(out).permute(0, 3, 1, 2)


def _pixelate(x, p, ctx):
    f = p["factor"]
    h, w = x.shape[-2:]
    size = (max(1, int(h * f)), max(1, int(w * f)))
    if size == (h, w):
        return x
    small = F.interpolate(x, size=size, mode="area")
    return F.interpolate(small, size=(h, w), mode="nearest-exact")


def _downscale(x, p, ctx):
    f = p["factor"]
    h, w = x.shape[-2:]
    size = (max(1, round(h * f)), max(1, round(w * f)))
    if size == (h, w):
        return x
    small = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)
    return F.interpolate(small, size=(h, w), mode="bilinear", align_corners=False).clamp(0, 1)


def _elastic_transform(x, p, ctx):
    alpha = p["alpha"]
    if alpha == 0:
        return x
    b, _, h, w = x.shape
    max_d = h * 0.005
    sigma = (h * 0.01, w * 0.01)
    field = ctx.rng.uniform((2, h, w), -max_d, max_d)  # dx, dy
    field = gaussian_blur(field, sigma, mode="symmetric", truncate=3.0) * alpha
    rows = torch.arange(h, device=x.device, dtype=x.dtype).view(1, h, 1)
    cols = torch.arange(w, device=x.device, dtype=x.dtype).view(1, 1, w)
    # map_coordinates(order=1, mode='reflect') reads pixel-index coordinates (centre = index);
    # grid_sample(align_corners=False, reflection) uses the same half-sample reflection.
    gx = (2 * (cols + field[:, 0]) + 1) / w - 1
    gy = (2 * (rows + field[:, 1]) + 1) / h - 1
    grid = torch.stack((gx, gy), dim=-1)
    y = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    return y.clamp(0, 1)


# =============================================================== weather
def _fog(x, p, ctx):
    amount = p["amount"]
    if amount == 0:
        return x
    b, c, h, w = x.shape
    mapsize = _next_pow2(max(h, w, c))
    haze = plasma_fractal(ctx.rng, mapsize, p["decay"], (h, w)).unsqueeze(1)
    max_val = x.flatten(1).amax(1).view(-1, 1, 1, 1)
    y = x + amount * haze
    return (y * max_val / (max_val + amount)).clamp(0, 1)


FROST_TINT = (0.90, 0.98, 1.07)


def frost_texture(rng: Rng, h: int, w: int, channels: int) -> torch.Tensor:
    """A procedural stand-in for ImageNet-C's frost photographs, ``[B, C, h, w]`` in [0, 1].

    Cloudy plasma (low frequencies) plus a rough plasma grain and short crystal streaks, tinted
    blue-white. Calibrated to the shipped photographs' statistics: mean grey about 0.65, standard
    deviation about 0.1, mean absolute neighbour difference about 0.04, blue > green > red.
    """
    mapsize = _next_pow2(max(h, w))
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


def _frost(x, p, ctx):
    if p["frost"] == 0 and p["image"] == 1:
        return x
    tex = frost_texture(ctx.rng, x.shape[2], x.shape[3], x.shape[1])
    return (p["image"] * x + p["frost"] * tex).clamp(0, 1)


def _snow(x, p, ctx):
    b, c, h, w = x.shape
    layer = ctx.rng.normal((1, h, w), mean=p["loc"], std=p["scale"])
    layer = clipped_zoom(layer, p["zoom"])
    layer = torch.where(layer < p["threshold"], torch.zeros_like(layer), layer).clamp(0, 1)
    angles = _angles(ctx, b, p["angle"], -135.0, -45.0)
    layer = motion_blur_batch(layer, p["radius"], p["sigma"], angles)
    layer = torch.round(layer.clamp(0, 1) * 255) / 255
    blend = p["blend"]
    whitened = torch.maximum(x, to_gray(x) * 1.5 + 0.5)
    y = blend * x + (1 - blend) * whitened
    return (y + layer + layer.flip(-2, -1)).clamp(0, 1)


# =============================================================== occlusion
def _occlusion(x, p, ctx):
    area = p["area"]
    if area <= 0:
        return x
    b, c, h, w = x.shape
    out = x.clone()
    colour = torch.tensor(p["colour"], dtype=x.dtype, device=x.device)[:c].view(c, 1, 1)
    if colour.shape[0] < c:
        colour = colour.expand(c, 1, 1)
    for i in range(b):
        boxes = None if ctx.boxes is None else ctx.boxes[i]
        if boxes is None or len(boxes) == 0:
            boxes = torch.tensor([[0.0, 0.0, float(w), float(h)]])
        gen = None
        for box in boxes[:8].tolist():
            x1, y1, x2, y2 = box
            bw, bh = max(x2 - x1, 1.0), max(y2 - y1, 1.0)
            rw, rh = math.sqrt(area) * bw, math.sqrt(area) * bh
            cy = y1 + p["y"] * bh
            if p["placement"] == "beside":
                left = x2 if p["x"] >= 0.5 else x1 - rw
            else:
                left = x1 + p["x"] * bw - rw / 2
            top = cy - rh / 2
            c0, c1 = max(0, round(left)), min(w, round(left + rw))
            r0, r1 = max(0, round(top)), min(h, round(top + rh))
            if c1 <= c0 or r1 <= r0:
                continue
            ph, pw = r1 - r0, c1 - c0
            texture = p["texture"]
            if texture == "noise":
                if gen is None:
                    gen = torch.Generator(device=x.device).manual_seed(ctx.seeds[i])
                patch = torch.rand((c, ph, pw), generator=gen, device=x.device, dtype=x.dtype)
            else:
                patch = colour.expand(c, ph, pw).clone()
                if texture in ("stripes", "checker"):
                    yy = torch.arange(ph, device=x.device).view(ph, 1) // 4
                    xx = torch.arange(pw, device=x.device).view(1, pw) // 4
                    odd = (xx % 2 == 1) if texture == "stripes" else ((xx + yy) % 2 == 1)
                    patch = torch.where(odd.expand(c, ph, pw), 1 - patch, patch)
            out[i, :, r0:r1, c0:c1] = patch
    return out


# =============================================================== geometric
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


KERNELS: dict[str, Callable[..., Any]] = {
    "brightness": _brightness,
    "contrast": _contrast,
    "low_light": _low_light,
    "saturation": _saturation,
    "colour_cast": _colour_cast,
    "gaussian_noise": _gaussian_noise,
    "shot_noise": _shot_noise,
    "impulse_noise": _impulse_noise,
    "speckle_noise": _speckle_noise,
    "gaussian_blur": _gaussian_blur,
    "defocus_blur": _defocus_blur,
    "motion_blur": _motion_blur,
    "zoom_blur": _zoom_blur,
    "glass_blur": _glass_blur,
    "jpeg_compression": _jpeg_compression,
    "pixelate": _pixelate,
    "downscale": _downscale,
    "elastic_transform": _elastic_transform,
    "fog": _fog,
    "frost": _frost,
    "snow": _snow,
    "occlusion": _occlusion,
    "scale": _scale,
    "translate": _translate,
    "rotate": _rotate,
    "hflip": _hflip,
}
