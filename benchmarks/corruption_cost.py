"""The corruption sweep's cost per corrupted image against one inference of the reference model,
before and after issue 18's kernel changes, side by side in one run (target: <= 10%).

    .venv/bin/python benchmarks/corruption_cost.py [--images 4] [--rounds 3] [--threads 1]

"Before" are the previous kernels, kept here verbatim: shot noise with ``torch.poisson``
(a per-element rejection sampler), zoom blur resizing its crops in NCHW layout, and separable
(Gaussian) blurs as sums of shifted slices. "After" are the package's: shot noise from
per-level Walker alias tables (one uniform and two table reads per pixel), zoom blur in
channels-last layout (the same bilinear values, about 3x faster to resize on the CPU), and
separable blurs as two depthwise conv2d passes in channels-last layout (what glass blur and the
elastic transform's displacement field spend most of their time in). Every corruption x severity is timed in both configurations in
alternating rounds (the minimum of ``--rounds``), with the model's inference timed between
them, so a busy machine slows both sides alike. Each round applies a corruption's severities
1-5 in order, as the sweep does: "after" shares what depends on the seeds only between them
(frost's texture, made once per image instead of five times); "before" shares nothing. The images are example-suite photos resized to
640x480 (synthetic scenes when absent); the model is example_suite/models/kp-tiny-base.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from corruptions import load_images, load_model, sync, time_torch  # benchmarks/ on sys.path

from pytest_kpmodel.robustness.corruptions import SEVERITIES
from pytest_kpmodel.robustness.kinds import CORRUPTIONS
from pytest_kpmodel.robustness.ops import apply as ops_apply
from pytest_kpmodel.robustness.ops import filters
from pytest_kpmodel.robustness.ops.blur import zoom_factors
from pytest_kpmodel.robustness.ops.context import SEED_MEMO
from pytest_kpmodel.robustness.ops.filters import clipped_zoom, fft_conv


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


# (namespace, name, implementation) of each configuration
BEFORE = [
    (ops_apply.KERNELS, "shot_noise", shot_noise_before),
    (ops_apply.KERNELS, "zoom_blur", zoom_blur_before),
    (filters, "separable_conv", separable_conv_before),
    (SEED_MEMO, "max_bytes", 0),  # nothing shared between severities
]
AFTER = [
    (ops_apply.KERNELS, "shot_noise", ops_apply.KERNELS["shot_noise"]),
    (ops_apply.KERNELS, "zoom_blur", ops_apply.KERNELS["zoom_blur"]),
    (filters, "separable_conv", filters.separable_conv),
    (SEED_MEMO, "max_bytes", SEED_MEMO.max_bytes),
]
CHANGED = {"shot_noise", "zoom_blur"}  # kernels replaced; the others changed through the blurs


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
