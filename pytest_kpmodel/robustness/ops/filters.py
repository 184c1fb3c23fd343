"""Padding, convolution and resampling shared by the kernels. Large kernels (the defocus disk)
are applied with FFT convolution, motion-blur lines as ImageNet-C's shifted sums, both on
explicitly padded images, which reproduces the border modes of the reference implementations:
``replicate`` (skimage ``gaussian`` mode 'nearest', numpy edge shifts), ``reflect101``
(OpenCV's default BORDER_REFLECT_101) and ``symmetric`` (scipy 'reflect').
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch
import torch.nn.functional as F

from .context import scratch


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
def good_fft_size(n: int) -> int:
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
    fh, fw = good_fft_size(xp.shape[-2]), good_fft_size(xp.shape[-1])
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


# Up to this many taps a separable kernel runs as two depthwise conv2d passes in channels-last
# layout (oneDNN's depthwise kernels on the CPU: 2.5-4.5x the shifted sums at 5-17 taps, even
# with the FFT at 33, measured on 640x480 batches); longer kernels go through one FFT.
DEPTHWISE_MAX_TAPS = 33


def pad_channels_last(
    x: torch.Tensor, ph: int, pw: int, mode: str, work: bool = False
) -> torch.Tensor:
    """:func:`pad` into a channels-last buffer: for 'replicate', the image and its borders are
    copied straight into it (one buffer instead of two: a fresh buffer's page faults cost
    about as much as the copy). ``work``: the caller only reads it before its next call (it is
    then a buffer kept per thread, :func:`.context.scratch`)."""
    b, c, h, w = x.shape
    if mode != "replicate" or not (ph or pw):
        return pad(x, ph, pw, mode).contiguous(memory_format=torch.channels_last)
    shape = (b, c, h + 2 * ph, w + 2 * pw)
    if work and x.dtype == torch.float32:
        flat = scratch("pad_channels_last", (math.prod(shape),), device=x.device)
        out = flat.view(b, shape[2], shape[3], c).permute(0, 3, 1, 2)
    else:
        out = torch.empty(shape, dtype=x.dtype, device=x.device, memory_format=torch.channels_last)
    return _replicate_into(x, ph, pw, out)


def pad_replicate_work(x: torch.Tensor, ph: int, pw: int) -> torch.Tensor:
    """:func:`pad` 'replicate' of a float32 ``[B, C, H, W]`` batch into a buffer kept per thread
    (:func:`.context.scratch`; plain layout): for a caller that only reads it before its next
    call (a fresh padded batch costs more in page faults than the copy)."""
    if x.ndim != 4 or x.dtype != torch.float32 or not (ph or pw):
        return pad(x, ph, pw, "replicate")
    b, c, h, w = x.shape
    shape = (b, c, h + 2 * ph, w + 2 * pw)
    out = scratch("pad_replicate", (math.prod(shape),), device=x.device).view(shape)
    return _replicate_into(x, ph, pw, out)


def _replicate_into(x: torch.Tensor, ph: int, pw: int, out: torch.Tensor) -> torch.Tensor:
    """``x`` and its edge-replicated borders written into ``out`` (``ph``/``pw`` larger)."""
    h, w = x.shape[-2:]
    out[:, :, ph : ph + h, pw : pw + w] = x
    out[:, :, :ph, pw : pw + w] = x[:, :, :1]
    out[:, :, ph + h :, pw : pw + w] = x[:, :, -1:]
    out[:, :, :, :pw] = out[:, :, :, pw : pw + 1]
    out[:, :, :, pw + w :] = out[:, :, :, pw + w - 1 : pw + w]
    return out


def _layout(x: torch.Tensor, channels_last: bool | None) -> torch.memory_format:
    """The layout of a result: ``channels_last`` if given, else ``x``'s own."""
    if channels_last is None:
        channels_last = x.ndim == 4 and not x.is_contiguous()
        channels_last = channels_last and x.is_contiguous(memory_format=torch.channels_last)
    return torch.channels_last if channels_last else torch.contiguous_format


def _column_pass(y: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """The depthwise ``[k, 1]`` convolution of a channels-last ``[B, C, H, W]`` batch (C > 1),
    run as one over ``W * C`` channels of width 1 (the same memory): oneDNN's depthwise kernels
    vectorise over the channels, so three are slow and ``W * C`` fast (about 1.1-1.5x at 7-13
    taps on 640x480 batches; the same sums in the same order, bit-identical)."""
    b, c, hp, wp = y.shape
    wide = y.permute(0, 2, 3, 1).reshape(b, hp, 1, wp * c).permute(0, 3, 1, 2)
    weight = k.view(1, 1, -1, 1).expand(wp * c, 1, -1, 1).contiguous()
    out = F.conv2d(wide, weight, groups=wp * c)  # [B, W * C, H', 1], channels-last
    return out.permute(0, 2, 3, 1).reshape(b, -1, wp, c).permute(0, 3, 1, 2)


def _depthwise(
    x: torch.Tensor, ky: torch.Tensor, kx: torch.Tensor, mode: str,
    channels_last: bool | None = None,
) -> torch.Tensor:  # fmt: skip
    """Column pass then row pass of a separable symmetric kernel (conv2d correlates: the same for
    a symmetric kernel), on the image padded once with ``mode``; the result in ``x``'s layout
    (or channels-last / not as asked)."""
    c = x.shape[1]
    ph, pw = ky.numel() // 2, kx.numel() // 2
    # the padded copy is read by the first convolution only (one runs whenever ph or pw > 0)
    y = pad_channels_last(x, ph, pw, mode, work=bool(ph or pw))
    if ky.numel() > 1 and c > 1:
        y = _column_pass(y, ky.to(y.dtype))
    elif ky.numel() > 1:  # one channel: a plain convolution (another kernel of oneDNN's)
        y = F.conv2d(y, ky.to(y.dtype).view(1, 1, -1, 1))
    if kx.numel() > 1:
        y = F.conv2d(y, kx.to(y.dtype).view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
    return y.contiguous(memory_format=_layout(x, channels_last))


def separable_conv(
    x: torch.Tensor, ky: torch.Tensor, kx: torch.Tensor, mode: str,
    channels_last: bool | None = None,
) -> torch.Tensor:  # fmt: skip
    """Same-size separable convolution with symmetric kernels: two depthwise passes for kernels
    up to ``DEPTHWISE_MAX_TAPS`` (the result in ``x``'s layout unless ``channels_last`` says),
    one FFT convolution with the outer product otherwise; shifted sums for what is not a
    ``[B, C, H, W]`` batch."""
    if max(ky.numel(), kx.numel()) > DEPTHWISE_MAX_TAPS:
        return fft_conv(x, torch.outer(ky, kx).unsqueeze(0), mode)
    if x.ndim == 4 and x.is_floating_point():
        return _depthwise(x, ky, kx, mode, channels_last)
    y = x
    if ky.numel() > 1:
        y = _shift_sum(y, ky.to(y.dtype), -2, mode)
    if kx.numel() > 1:
        y = _shift_sum(y, kx.to(y.dtype), -1, mode)
    return y


def gaussian_blur(
    x: torch.Tensor, sigma: float | tuple[float, float], mode: str = "replicate",
    truncate: float = 4.0, channels_last: bool | None = None,
) -> torch.Tensor:  # fmt: skip
    """skimage.filters.gaussian: per-axis sigma (rows, columns), default mode 'nearest'.
    ``channels_last``: the layout of a depthwise result (None: ``x``'s)."""
    sy, sx = (sigma, sigma) if isinstance(sigma, int | float) else sigma
    if sy <= 0 and sx <= 0:
        return x
    one = torch.ones(1, device=x.device)
    ky = gaussian_kernel1d(sy, truncate, x.device) if sy > 0 else one
    kx = gaussian_kernel1d(sx, truncate, x.device) if sx > 0 else one
    if channels_last is None:  # (the benchmark's old separable_conv takes four arguments)
        return separable_conv(x, ky, kx, mode)
    return separable_conv(x, ky, kx, mode, channels_last)


def to_gray(x: torch.Tensor) -> torch.Tensor:
    """ITU-R 601 luma (OpenCV RGB2GRAY), ``[B, 1, H, W]``, a new tensor."""
    if x.shape[1] == 1:
        return x.clone()
    # one one-channel buffer (no three-channel product); always a new tensor
    return (x[:, 0:1] * 0.299).add_(x[:, 1:2], alpha=0.587).add_(x[:, 2:3], alpha=0.114)


def zoom_key(h: int, w: int, zoom: float) -> tuple[int, int, int, int]:
    """``(crop rows, crop columns, rows, columns)`` of ImageNet-C's clipped_zoom: the centre
    crop of ``ceil(n / zoom)`` and the ``round(crop * zoom)`` it is resized to. The resized
    image depends on these four numbers only, so zooms that share them share it."""
    ch, cw = math.ceil(h / zoom), math.ceil(w / zoom)
    return ch, cw, int(round(ch * zoom)), int(round(cw * zoom))


def zoom_crop(x: torch.Tensor, key: tuple[int, int, int, int]) -> torch.Tensor:
    """:func:`clipped_zoom` for a :func:`zoom_key`."""
    h, w = x.shape[-2:]
    ch, cw, sh, sw = key
    top, left = (h - ch) // 2, (w - cw) // 2
    crop = x[..., top : top + ch, left : left + cw]
    if (sh, sw) == (ch, cw):
        return crop[..., :h, :w]
    y = F.interpolate(crop, size=(sh, sw), mode="bilinear", align_corners=True)
    return y[..., :h, :w]


def clipped_zoom(x: torch.Tensor, zoom: float) -> torch.Tensor:
    """ImageNet-C's clipped_zoom: centre crop of ceil(n / zoom), scipy ``zoom(order=1)`` back
    (corner-aligned linear interpolation to ``round(crop * zoom)``), top-left ``n`` kept."""
    return zoom_crop(x, zoom_key(*x.shape[-2:], zoom))


def next_pow2(n: int) -> int:
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


def motion_taps(radius: int, sigma: float, angle_deg: float) -> list[tuple[int, int, float]]:
    """``(dy, dx, weight)`` of :func:`motion_kernels`' taps for one angle (same arithmetic)."""
    k = motion_kernels(radius, sigma, torch.tensor([float(angle_deg)]))[0]
    c = k.shape[-1] // 2
    nz = torch.nonzero(k).tolist()
    return [(r - c, q - c, float(k[r, q])) for r, q in nz]


def motion_blur_batch(
    x: torch.Tensor, radius: int, sigma: float, angles_deg: torch.Tensor,
    out: torch.Tensor | None = None,
) -> torch.Tensor:  # fmt: skip
    """ImageNet-C's motion blur of each image at its angle (:func:`motion_kernels`), computed as
    ImageNet-C does, a weighted sum of edge-replicated shifts: 2 r + 1 slice additions instead
    of three FFTs of the padded image, 3-5x the FFT convolution with the explicit kernel at the
    kinds' radii (up to 20, 41 taps) on 640x480 batches, one channel or three; equal to the FFT
    to float rounding. ``out``: a buffer of ``x``'s shape for the result."""
    if radius <= 0:
        return x
    h, w = x.shape[-2:]
    p = 2 * radius
    xp = pad_replicate_work(x, p, p)  # read here only
    out = torch.zeros_like(x) if out is None else out.zero_()
    for j, angle in enumerate(angles_deg.tolist()):
        for dy, dx, wt in motion_taps(radius, sigma, angle):
            out[j].add_(xp[j, :, p - dy : p - dy + h, p - dx : p - dx + w], alpha=wt)
    return out


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
