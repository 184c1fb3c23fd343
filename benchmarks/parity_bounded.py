"""``kp_parity`` on a full-size keypoint R-CNN R50-FPN on the CPU with 3 images: forward passes
and wall time per variant, against the bound the settings give and against the previous
defaults, side by side from one run.

    .venv/bin/python benchmarks/parity_bounded.py [--images 3] [--image-size 320 480]
        [--variants fp32 bf16 fp16 onnx exported] [--iters 10] [--warmup 1] [--threads 1]
        [--device cpu|cuda] [--run-emulated-bf16]

The model is torchvision's ``keypointrcnn_resnet50_fpn`` with random weights (no download), on
the first ``--images`` images of example_suite/data/val. The run is ``bench.parity.run`` with
``parity_settings`` (what the ``kp_parity`` fixture uses): every variant predicts the images and
is timed with ``warmup`` calls per shape and ``iters`` timed calls. Each variant is a progress
step (shown on a terminal).

Printed per variant: status, forward passes (images predicted + benchmark calls), the bound
``images + warmup x shapes + iters``, seconds, and the seconds the previous defaults would have
taken, estimated from this run's own per-call median: ``images + 10 warm-up + 100 timed + 20
stage-pass calls`` (the issue's run: "did not finish in 10 minutes and printed nothing").

On a CPU without native bf16 (no AVX512-BF16/AMX) the bf16 row is not timed (``bench.parity``'s
module doc): it predicts the images (its bound is the images alone; its per-call time, for the
estimates, is its predictions' time per image), or is skipped when they are projected over
``parity.EMULATED_BF16_BUDGET_S`` (a full-size R-CNN: hours). ``--run-emulated-bf16`` runs and
times it regardless. SIGTERM (``timeout``) ends the run like Ctrl-C, so its temp folder goes.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE_VAL = ROOT / "example_suite/data/val/annotations.json"
BEFORE_CALLS = 10 + 100 + 20  # warm-up (max(10, distinct batches)), timed, stage pass


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=int, default=3)
    ap.add_argument("--image-size", type=int, nargs=2, default=(320, 480), metavar=("H", "W"),
                    help="kp_bench image_size of the speed columns (the default is 800 1333)")  # fmt: skip
    ap.add_argument("--variants", nargs="+", default=["fp32", "bf16", "fp16", "onnx", "exported"])
    ap.add_argument("--iters", type=int, default=None, help="kp_bench iters (default: parity's)")
    ap.add_argument("--warmup", type=int, default=None, help="kp_bench warmup (default: parity's)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--run-emulated-bf16", action="store_true",
                    help="run and time the bf16 row even where the CPU emulates bf16 (hours "
                         "for a full-size R-CNN)")  # fmt: skip
    args = ap.parse_args(argv)
    # a SIGTERM (timeout, a CI runner) unwinds like Ctrl-C: the run's temp folder is removed
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    import torch
    import torchvision

    from pytest_kpmodel.adapters.options import LoadOptions
    from pytest_kpmodel.adapters.torch_module import TorchDetectionModel
    from pytest_kpmodel.bench import parity, precision
    from pytest_kpmodel.data import load_dataset

    if args.threads:
        torch.set_num_threads(args.threads)
    marker: dict = {"image_size": tuple(args.image_size)}
    if args.iters is not None:
        marker["iters"] = args.iters
    if args.warmup is not None:
        marker["warmup"] = args.warmup
    settings = parity.parity_settings(marker)
    if EXAMPLE_VAL.is_file():
        dataset = load_dataset(EXAMPLE_VAL)
    else:
        sys.path.insert(0, str(ROOT / "tests"))
        from kp_factories import make_dataset

        dataset = load_dataset(make_dataset(Path(tempfile.mkdtemp()), n=args.images))
    dataset = dataset.subset(list(range(min(args.images, len(dataset)))))
    torch.manual_seed(0)
    module = torchvision.models.detection.keypointrcnn_resnet50_fpn(
        weights=None, weights_backbone=None
    ).eval()
    model = TorchDetectionModel(module, LoadOptions(device=args.device), 17, "r50-fpn")
    n = len(dataset)
    print(f"{args.device}, torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"keypointrcnn_resnet50_fpn (random weights); {n} images; kp_bench settings "
          f"warmup={settings.warmup} iters={settings.iters} image_size={settings.image_size}")  # fmt: skip
    emulated = precision.bf16_emulated(args.device)
    print(f"bf16 on {args.device}: {emulated or 'native'} "
          f"(torch CPU capability {torch.backends.cpu.get_cpu_capability()})")  # fmt: skip

    before_tmp = set(os.listdir(tempfile.gettempdir()))
    t0 = time.perf_counter()
    table = parity.run(model, None, dataset, tuple(args.variants), settings=settings,
                       run_emulated_bf16=args.run_emulated_bf16)  # fmt: skip
    total = time.perf_counter() - t0
    left = set(os.listdir(tempfile.gettempdir())) - before_tmp

    print()
    print(table.format())
    print()
    print(f"{'variant':9s} {'status':8s} {'passes':>6s} {'bound':>6s} {'seconds':>8s} "
          f"{'s/call':>7s} {'previous defaults (est.)':>25s}")  # fmt: skip
    # the reference predictions are the same before and after: counted on both sides
    est_total = total - sum(r.seconds or 0.0 for r in table.rows)
    fp32 = next((r for r in table.rows if r.variant == "fp32" and r.latency_ms_p50), None)
    for r in table.rows:
        images = n if r.variant != "fp32" else 0  # fp32's predictions are the reference's
        timed = r.speed_skipped is None
        bound = images + (settings.warmup + settings.iters if timed else 0)
        if r.status != "ok":
            print(f"{r.variant:9s} {r.status:8s} {'-':>6s} {'-':>6s} {r.seconds:8.1f}")
            print(f"{'':9s} {r.reason}")
            if r.variant == "bf16" and emulated and fp32 is not None:
                # the previous defaults ran it in full: at least fp32's time x the slowdown
                factor = precision.emulated_bf16_slowdown()
                per_call = fp32.latency_ms_p50 / 1000.0 * factor
                before = (images + BEFORE_CALLS) * per_call
                est_total += before
                print(f"{'':9s} the previous defaults ran it: at least {before:.0f} s "
                      f"({images} + {BEFORE_CALLS} calls x {per_call:.1f} s = fp32's p50 x "
                      f"{factor:.0f})")  # fmt: skip
            continue
        prepare = r.prepare_s or 0.0
        if r.latency_ms_p50 is not None:
            per_call = r.latency_ms_p50 / 1000.0
        else:  # not timed (emulated bf16): its predictions' time per image
            per_call = (r.seconds - prepare) / max(r.forward_passes or 0, 1)
        before = prepare + (images + BEFORE_CALLS) * per_call
        est_total += before
        print(f"{r.variant:9s} {r.status:8s} {r.forward_passes:6d} {bound:6d} {r.seconds:8.1f} "
              f"{per_call:7.2f} {before:23.0f} s")  # fmt: skip
        if not timed:
            cost = (settings.warmup + settings.iters) * per_call
            print(f"{'':9s} {r.speed_skipped}; timing it would add about {cost:.0f} s")
    print()
    print(f"whole run: {total:.1f} s (reference predictions included); the previous defaults: "
          f"about {est_total:.0f} s -> {est_total / total:.1f}x")  # fmt: skip
    print(f"left in the temp folder: {sorted(left) or 'nothing'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
