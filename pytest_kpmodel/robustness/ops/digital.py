"""Digital kernels: JPEG round trip, pixelate, downscale, elastic transform."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from .context import SEED_MEMO, Kernel, result_like, work
from .filters import gaussian_blur


def _jpeg_compression(x, p, ctx):
    quality = int(min(max(p["quality"], 1), 100))
    channels = x.shape[1]
    if channels not in (1, 3):
        raise ValueError(f"jpeg_compression needs 1 or 3 channels, got {channels}")
    if not x.is_cuda:  # PIL's encoder reads HWC bytes: converted and transposed in one copy
        levels = x.clamp(0, 1).mul_(255).round_()
        hwc = torch.empty((x.shape[0], *x.shape[2:], channels), dtype=torch.uint8)
        hwc.copy_(levels.permute(0, 2, 3, 1))
        back = _pil_jpeg_hwc(hwc, quality)
        out = result_like(x)  # a channels-last batch: the copy back is a plain one
        return out.copy_(back.permute(0, 3, 1, 2)).div_(255)
    u8 = (x.clamp(0, 1) * 255).round().to(torch.uint8)
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
    return _pil_jpeg_hwc(u8.permute(0, 2, 3, 1).contiguous(), quality).permute(0, 3, 1, 2)


def _pil_jpeg_hwc(hwc: torch.Tensor, quality: int) -> torch.Tensor:
    """:func:`_pil_jpeg` on and to ``[B, H, W, C]`` uint8 (PIL's own layout: no transposes)."""
    out = torch.empty_like(hwc)
    for arr, dst in zip(hwc.numpy(), out.numpy(), strict=True):
        dst[...] = jpeg_round_trip(arr, quality)
    return out


def jpeg_round_trip(arr: Any, quality: int) -> Any:
    """One ``[H, W, C]`` uint8 image through PIL's JPEG encode and decode, back as
    ``[H, W, C]`` (a read-only array of PIL's bytes)."""
    import io

    import numpy as np
    from PIL import Image

    pil = Image.fromarray(arr[..., 0] if arr.shape[2] == 1 else arr)
    buf = io.BytesIO()
    pil.save(buf, "JPEG", quality=quality)
    buf.seek(0)
    back = Image.open(buf)
    back.load()
    if back.mode != pil.mode:
        back = back.convert(pil.mode)
    a = np.asarray(back)
    return a[..., None] if a.ndim == 2 else a


def _pixelate(x, p, ctx):
    f = p["factor"]
    h, w = x.shape[-2:]
    size = (max(1, int(h * f)), max(1, int(w * f)))
    if size == (h, w):
        return x
    small = F.interpolate(x, size=size, mode="area")
    if _NEAREST_EXACT_OUT is not None and x.device.type == "cpu":
        # into a kept result buffer (see result_like): the upsampled image is the whole batch
        return _NEAREST_EXACT_OUT(small, (h, w), None, None, out=result_like(x))
    return F.interpolate(small, size=(h, w), mode="nearest-exact")


# The out= form of F.interpolate(mode="nearest-exact") (a torch-internal name; absent -> None).
_NEAREST_EXACT_OUT = getattr(getattr(torch._C, "_nn", None), "_upsample_nearest_exact2d", None)


def _downscale(x, p, ctx):
    f = p["factor"]
    h, w = x.shape[-2:]
    size = (max(1, round(h * f)), max(1, round(w * f)))
    if size == (h, w):
        return x
    small = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)
    return F.interpolate(small, size=(h, w), mode="bilinear", align_corners=False).clamp(0, 1)


def _displacement(ctx, h: int, w: int, max_d: float, sigma: tuple[float, float]):
    field = ctx.rng.uniform((2, h, w), -max_d, max_d)  # dx, dy
    return gaussian_blur(field, sigma, mode="symmetric", truncate=3.0)


def elastic_field(ctx, x: torch.Tensor) -> torch.Tensor:
    """The smoothed displacement field ``[B, 2, H, W]`` (dx, dy) at alpha 1: a function of the
    seeds and the size, made once for the five severities of a sweep (only alpha scales it)."""
    h, w = x.shape[-2:]
    max_d, sigma = h * 0.005, (h * 0.01, w * 0.01)
    key = ("elastic", tuple(ctx.seeds), h, w, str(x.device))
    return SEED_MEMO.get(key, lambda: _displacement(ctx, h, w, max_d, sigma))


def _elastic_transform(x, p, ctx):
    alpha = p["alpha"]
    if alpha == 0:
        return x
    b, _, h, w = x.shape
    field = elastic_field(ctx, x)
    rows = torch.arange(h, device=x.device, dtype=x.dtype).view(1, h, 1)
    cols = torch.arange(w, device=x.device, dtype=x.dtype).view(1, 1, w)
    # map_coordinates(order=1, mode='reflect') reads pixel-index coordinates (centre = index);
    # grid_sample(align_corners=False, reflection) uses the same half-sample reflection.
    # (2 (index + alpha d) + 1) / n - 1, computed per plane in a contiguous buffer and copied
    # into the grid's strided plane once (six passes over strided planes cost 3x as much; the
    # same operations in the same order: bit-identical), instead of torch.stack along a new
    # last dimension, which copies one element at a time.
    grid = work(1, (b, h, w, 2), x.dtype, x.device)  # kept: read by grid_sample only
    plane = work(2, (b, h, w), x.dtype, x.device)
    for axis, (index, n) in enumerate(((cols, w), (rows, h))):
        torch.mul(field[:, axis], alpha, out=plane)
        grid[..., axis].copy_(plane.add_(index).mul_(2).add_(1).div_(n).sub_(1))
    y = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    return y.clamp_(0, 1)  # grid_sample's own output


CHANNELS_LAST = frozenset({"jpeg_compression"})  # see apply._wants_channels_last
KERNELS: dict[str, Kernel] = {
    "jpeg_compression": _jpeg_compression,
    "pixelate": _pixelate,
    "downscale": _downscale,
    "elastic_transform": _elastic_transform,
}
