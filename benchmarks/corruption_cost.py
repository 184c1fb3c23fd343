"""The corruption sweep's cost per corrupted image against one inference of the reference model,
before and after issue 18's kernel changes, side by side in one run (target: <= 10%).

    .venv/bin/python benchmarks/corruption_cost.py [--images 4] [--rounds 3] [--threads 1]

"Before" are the kernels as issue 18 found them, kept here verbatim: shot noise with
``torch.poisson`` (a per-element rejection sampler), zoom blur resizing its crops in NCHW
layout, separable (Gaussian) blurs as sums of shifted slices, motion blur (and snow's flakes,
frost's streaks) as an FFT convolution, glass blur gathering the image per iteration, defocus
blur's image FFT at every severity, the plasma fractal interleaved with ``torch.stack``, random
draws stacked and scaled out of place, the elastic transform's grid stacked, JPEG's bytes
stacked and transposed, elementwise kernels with a fresh buffer per operation.
"After" are the package's: Walker alias tables for shot noise, channels-last zoom crops,
depthwise conv2d blurs, motion blur as ImageNet-C's shifted sums, glass blur composing its
iterations' source maps and gathering once, fewer and in-place temporaries (on a CPU a fresh
large buffer costs more in page faults than the arithmetic), and work shared by a sweep's
severities of the same images (``SEED_MEMO``: frost's texture, the elastic field, fog's haze
for equal decays, defocus blur's image spectrum, zoom blur's partial sums), temporaries and
results in buffers kept per thread (``context.work``, ``context.result_like``), the batch
buffer handed on while it holds the same image tensors, and a channels-last batch for zoom
blur, glass blur and JPEG when the images are HWC in memory. Every corruption x severity is
timed in both configurations in alternating rounds (the minimum of ``--rounds``), with the
model's inference timed between them, so a busy machine slows both sides alike. Each round
applies a corruption's severities 1-5 in order, from an empty memo, as the sweep does;
"before" shares nothing and copies its images into a plain-layout batch at every call. The
images are example-suite photos resized to 640x480 (synthetic scenes when absent); the model
is example_suite/models/kp-tiny-base.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F
from corruptions import load_images, load_model, sync, time_torch  # benchmarks/ on sys.path

from pytest_kpmodel.robustness.corruptions import SEVERITIES
from pytest_kpmodel.robustness.kinds import CORRUPTIONS
from pytest_kpmodel.robustness.ops import apply as ops_apply
from pytest_kpmodel.robustness.ops import digital, filters, textures
from pytest_kpmodel.robustness.ops.blur import zoom_factors
from pytest_kpmodel.robustness.ops.context import SEED_MEMO, Rng, kernel_angles
from pytest_kpmodel.robustness.ops.filters import (
    clipped_zoom,
    conv_same,
    disk_kernel,
    fft_conv,
    gaussian_blur,
    motion_kernels,
    next_pow2,
)


def shot_noise_before(x, p, ctx):
    c = p["photons"]
    if c is None:
        return x
    return (ctx.rng.poisson(x.clamp(0, 1) * c) / c).clamp(0, 1)


def zoom_blur_before(x, p, ctx):
    zooms = zoom_factors(p["max_zoom"], p["step"])
    if len(zooms) <= 1:
        return x
    out = x.clone()
    for z in zooms:
        out += clipped_zoom(x, z)
    return (out / (len(zooms) + 1)).clamp(0, 1)


def shift_sum_before(x, k, dim, mode):
    r = k.numel() // 2
    n = x.shape[dim]
    xp = filters.pad(x, r, 0, mode) if dim == -2 else filters.pad(x, 0, r, mode)
    taps = k.tolist()
    out = xp.narrow(dim, r, n) * taps[r]
    for i in range(1, r + 1):
        out += (xp.narrow(dim, r - i, n) + xp.narrow(dim, r + i, n)) * taps[r + i]
    return out


def separable_conv_before(x, ky, kx, mode):
    if max(ky.numel(), kx.numel()) > 17:
        return fft_conv(x, torch.outer(ky, kx).unsqueeze(0), mode)
    y = x
    if ky.numel() > 1:
        y = shift_sum_before(y, ky.to(y.dtype), -2, mode)
    if kx.numel() > 1:
        y = shift_sum_before(y, kx.to(y.dtype), -1, mode)
    return y


# The kernels as they were before the rest of issue 18 (verbatim, from commit 58dc970):
# motion blur as one FFT convolution with the explicit kernel (also snow's flakes and frost's
# streaks), glass blur gathering the image once per iteration from randint offsets, defocus
# blur's FFT of the image at every severity, the plasma fractal interleaved with torch.stack,
# Rng draws stacked and scaled out of place, and the elementwise kernels building a fresh
# buffer per operation.


def motion_blur_batch_before(x, radius, sigma, angles_deg):
    if radius <= 0:
        return x
    return fft_conv(x, motion_kernels(radius, sigma, angles_deg), "replicate")


def motion_blur_before(x, p, ctx):
    if p["radius"] <= 0:
        return x
    angles = kernel_angles(ctx, x.shape[0], p["angle"], -45.0, 45.0)
    return motion_blur_batch_before(x, p["radius"], p["sigma"], angles).clamp(0, 1)


def defocus_blur_before(x, p, ctx):
    if p["radius"] <= 0:
        return x
    kernel = disk_kernel(p["radius"], p["alias_blur"], x.device)
    return conv_same(x, kernel, "reflect101").clamp(0, 1)


def glass_blur_before(x, p, ctx):
    sigma, delta, iterations = p["sigma"], p["max_delta"], p["iterations"]
    b, c, h, w = x.shape
    y = gaussian_blur(x, sigma) if sigma > 0 else x
    y = torch.floor(y.clamp(0, 1) * 255) / 255
    if delta > 0 and iterations > 0:
        rows = torch.arange(h, device=x.device).view(1, h, 1)
        cols = torch.arange(w, device=x.device).view(1, 1, w)
        for _ in range(iterations):
            d = ctx.rng.randint(-delta, delta, (2, h, w))
            src = (rows + d[:, 1]).clamp(0, h - 1) * w + (cols + d[:, 0]).clamp(0, w - 1)
            idx = src.view(b, 1, h * w).expand(b, c, h * w)
            y = y.reshape(b, c, h * w).gather(2, idx).view(b, c, h, w)
    return (gaussian_blur(y, sigma) if sigma > 0 else y).clamp(0, 1)


def gaussian_noise_before(x, p, ctx):
    if p["sigma"] == 0:
        return x
    return (x + ctx.rng.normal(x.shape[1:], std=p["sigma"])).clamp(0, 1)


def impulse_noise_before(x, p, ctx):
    amount = p["amount"]
    if amount == 0:
        return x
    u = ctx.rng.uniform(x.shape[1:])
    out = torch.where(u < amount / 2, torch.ones_like(x), x)
    return torch.where((u >= amount / 2) & (u < amount), torch.zeros_like(x), out)


def contrast_before(x, p, ctx):
    m = x.mean(dim=(2, 3), keepdim=True)
    return ((x - m) * p["factor"] + m).clamp(0, 1)


def brightness_before(x, p, ctx):
    v = x.amax(1, keepdim=True)
    v2 = (v + p["delta"]).clamp(0, 1)
    scaled = x * (v2 / v.clamp_min(1e-12))
    return torch.where(v > 0, scaled, v2.expand_as(x)).clamp(0, 1)


def elastic_transform_before(x, p, ctx):
    alpha = p["alpha"]
    if alpha == 0:
        return x
    b, _, h, w = x.shape
    field = digital.elastic_field(ctx, x) * alpha  # the same memoised field as before
    rows = torch.arange(h, device=x.device, dtype=x.dtype).view(1, h, 1)
    cols = torch.arange(w, device=x.device, dtype=x.dtype).view(1, 1, w)
    gx = (2 * (cols + field[:, 0]) + 1) / w - 1
    gy = (2 * (rows + field[:, 1]) + 1) / h - 1
    grid = torch.stack((gx, gy), dim=-1)
    y = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    return y.clamp(0, 1)


def jpeg_compression_before(x, p, ctx):
    quality = int(min(max(p["quality"], 1), 100))
    u8 = (x.clamp(0, 1) * 255).round().to(torch.uint8)
    if u8.is_cuda:  # nvjpeg: unchanged since
        return digital._jpeg_compression(x, p, ctx)
    return pil_jpeg_before(u8.cpu(), quality).to(x.device).to(x.dtype).div_(255)


def pil_jpeg_before(u8, quality):
    import numpy as np

    out = []
    for arr in u8.permute(0, 2, 3, 1).contiguous().numpy():
        # the same PIL round trip; np.array copies PIL's bytes as the old np.array(back) did
        out.append(torch.from_numpy(np.array(digital.jpeg_round_trip(arr, quality))))
    return torch.stack(out).permute(0, 3, 1, 2)


def plasma_fractal_before(rng, mapsize, decay, crop=None):
    b = len(rng.gens)
    ul = torch.zeros(b, 1, 1, device=rng.device)
    wibble, n = 100.0, 1
    while n < mapsize:
        amp = wibble * wibble
        noise = rng.uniform((3, n, n), -1.0, 1.0)
        sq = ul + ul.roll(-1, dims=1)
        dr = (sq + sq.roll(-1, dims=2)) / 4 + amp * noise[:, 0]
        d1 = (dr + dr.roll(1, dims=1) + ul + ul.roll(-1, dims=2)) / 4 + amp * noise[:, 1]
        d2 = (dr + dr.roll(1, dims=2) + ul + ul.roll(-1, dims=1)) / 4 + amp * noise[:, 2]
        top = torch.stack((ul, d1), dim=-1)
        bottom = torch.stack((d2, dr), dim=-1)
        ul = torch.stack((top, bottom), dim=2).reshape(b, 2 * n, 2 * n)
        n *= 2
        wibble /= decay
    flat = ul.flatten(1)
    lo = flat.amin(1).view(-1, 1, 1)
    span = (flat.amax(1).view(-1, 1, 1) - lo).clamp_min(1e-12)
    if crop is not None:
        ul = ul[:, : crop[0], : crop[1]]
    return (ul - lo) / span


def fog_before(x, p, ctx):
    amount = p["amount"]
    if amount == 0:
        return x
    b, c, h, w = x.shape
    mapsize = next_pow2(max(h, w, c))
    haze = plasma_fractal_before(ctx.rng, mapsize, p["decay"], (h, w)).unsqueeze(1)
    max_val = x.flatten(1).amax(1).view(-1, 1, 1, 1)
    y = x + amount * haze
    return (y * max_val / (max_val + amount)).clamp(0, 1)


def frost_before(x, p, ctx):
    if p["frost"] == 0 and p["image"] == 1:
        return x
    b, c, h, w = x.shape
    key = ("frost", tuple(ctx.seeds), c, h, w, str(x.device))
    tex = SEED_MEMO.get(key, lambda: textures.frost_texture(ctx.rng, h, w, c))
    return (p["image"] * x + p["frost"] * tex).clamp(0, 1)


def to_gray_before(x):
    if x.shape[1] == 1:
        return x
    w = torch.tensor([0.299, 0.587, 0.114], device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    return (x[:, :3] * w).sum(1, keepdim=True)


def snow_before(x, p, ctx):
    b, c, h, w = x.shape
    layer = ctx.rng.normal((1, h, w), mean=p["loc"], std=p["scale"])
    layer = clipped_zoom(layer, p["zoom"])
    layer = torch.where(layer < p["threshold"], torch.zeros_like(layer), layer).clamp(0, 1)
    angles = kernel_angles(ctx, b, p["angle"], -135.0, -45.0)
    layer = motion_blur_batch_before(layer, p["radius"], p["sigma"], angles)
    layer = torch.round(layer.clamp(0, 1) * 255) / 255
    blend = p["blend"]
    whitened = torch.maximum(x, to_gray_before(x) * 1.5 + 0.5)
    y = blend * x + (1 - blend) * whitened
    return (y + layer + layer.flip(-2, -1)).clamp(0, 1)


def rng_normal_before(self, shape, mean=0.0, std=1.0):
    out = torch.stack(
        [torch.randn(tuple(shape), generator=g, device=self.device) for g in self.gens]
    )
    return out * std + mean if (mean, std) != (0.0, 1.0) else out


def rng_uniform_before(self, shape, low=0.0, high=1.0, dtype=torch.float32):
    out = torch.stack(
        [torch.rand(tuple(shape), generator=g, device=self.device, dtype=dtype) for g in self.gens]
    )
    return out * (high - low) + low if (low, high) != (0.0, 1.0) else out


# (namespace, name, implementation) of each configuration
REPLACED = {
    "shot_noise": shot_noise_before,
    "zoom_blur": zoom_blur_before,
    "glass_blur": glass_blur_before,
    "motion_blur": motion_blur_before,
    "defocus_blur": defocus_blur_before,
    "gaussian_noise": gaussian_noise_before,
    "impulse_noise": impulse_noise_before,
    "contrast": contrast_before,
    "brightness": brightness_before,
    "elastic_transform": elastic_transform_before,
    "jpeg_compression": jpeg_compression_before,
    "fog": fog_before,
    "frost": frost_before,
    "snow": snow_before,
}
BEFORE = [
    *((ops_apply.KERNELS, name, impl) for name, impl in REPLACED.items()),
    (filters, "separable_conv", separable_conv_before),
    (textures, "plasma_fractal", plasma_fractal_before),  # frost's texture
    (textures, "motion_blur_batch", motion_blur_batch_before),
    (Rng, "normal", rng_normal_before),
    (Rng, "uniform", rng_uniform_before),
    (SEED_MEMO, "max_bytes", 0),  # nothing shared between severities
    (ops_apply, "CHANNELS_LAST", frozenset()),  # every batch in plain layout, as it was
    (ops_apply, "REUSE_BATCH", False),  # every call copies its images into the batch
]
AFTER = [
    *((ops_apply.KERNELS, name, ops_apply.KERNELS[name]) for name in REPLACED),
    (filters, "separable_conv", filters.separable_conv),
    (textures, "plasma_fractal", textures.plasma_fractal),
    (textures, "motion_blur_batch", textures.motion_blur_batch),
    (Rng, "normal", Rng.normal),
    (Rng, "uniform", Rng.uniform),
    (SEED_MEMO, "max_bytes", SEED_MEMO.max_bytes),
    (ops_apply, "CHANNELS_LAST", ops_apply.CHANNELS_LAST),
    (ops_apply, "REUSE_BATCH", True),
]
CHANGED = set(REPLACED)


def use(config: list) -> None:
    for where, name, impl in config:
        if isinstance(where, dict):
            where[name] = impl
        else:
            setattr(where, name, impl)


def time_apply(images, name: str, severity: int, config: list, device: str) -> float:
    """Seconds per image of one corruption under ``config`` (old or new kernels)."""
    use(config)
    return time_torch(images, name, severity, device)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=int, default=4, help="images in the batch")
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds (minimum kept)")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (0: default)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = args.device
    images, what = load_images(args.images)
    images = [im.to(device) for im in images]
    model, model_note = load_model(device)
    print(f"device {device}, torch {torch.__version__}, {torch.get_num_threads()} threads; {what}")
    print(f"model: {model_note}")
    for name in CORRUPTIONS:  # warm-up: libraries, kernels, the alias tables
        for config in (BEFORE, AFTER):
            for s in SEVERITIES:
                time_apply(images[:1], name, s, config, device)
    model.predict(images[:1])

    before: dict[str, list[float]] = {}
    after: dict[str, list[float]] = {}
    infer: list[float] = []
    try:
        for name in CORRUPTIONS:
            # As in a sweep: each round applies severities 1-5 once, in order, from an empty
            # memo (frost's texture is made at severity 1 and reused by 2-5).
            runs: dict[int, list[list[float]]] = {0: [], 1: []}
            for r in range(args.rounds):
                order = (0, 1) if r % 2 == 0 else (1, 0)
                for which in order:
                    config = (BEFORE, AFTER)[which]
                    SEED_MEMO.clear()
                    runs[which].append(
                        [time_apply(images, name, s, config, device) for s in SEVERITIES]
                    )
            SEED_MEMO.clear()
            b_sev = [min(col) for col in zip(*runs[0], strict=True)]
            a_sev = [min(col) for col in zip(*runs[1], strict=True)]
            sync(device)
            t0 = time.perf_counter()
            model.predict(images)
            sync(device)
            infer.append((time.perf_counter() - t0) / len(images))
            before[name], after[name] = b_sev, a_sev
            b, a = statistics.mean(b_sev), statistics.mean(a_sev)
            mark = "  (kernel replaced)" if name in CHANGED else ""
            print(f"  {name:18s} before {1000 * b:7.1f} ms/img   after {1000 * a:7.1f} ms/img   "
                  f"{b / a:5.2f}x{mark}", flush=True)  # fmt: skip
    finally:
        use(AFTER)

    n = len(CORRUPTIONS) * len(SEVERITIES)
    per_before = sum(map(sum, before.values())) / n
    per_after = sum(map(sum, after.values())) / n
    inference = statistics.median(infer)
    print()
    print(f"model inference: median {1000 * inference:.1f} ms/img over {len(infer)} batches "
          f"(timed between the corruptions)")  # fmt: skip
    print("per corrupted image (mean over 15 corruptions x 5 severities), side by side:")
    print(f"  before: corruption {1000 * per_before:.1f} ms = {100 * per_before / inference:.1f}% "
          f"of inference")  # fmt: skip
    print(f"  after:  corruption {1000 * per_after:.1f} ms = {100 * per_after / inference:.1f}% "
          f"of inference (target <= 10%)")  # fmt: skip
    print(f"  the sweep is {per_before / per_after:.2f}x faster")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
