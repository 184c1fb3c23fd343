"""Forward passes of ``kp_bench(warmup=2, iters=5)`` on a full-size keypoint R-CNN R50-FPN,
counted, against the previous rules, and what folding the stage timing into the timed calls
costs, side by side from one run.

    .venv/bin/python benchmarks/bench_passes.py [--image-size 320 480] [--threads 1]
        [--rounds 3] [--device cpu|cuda]

The model is torchvision's ``keypointrcnn_resnet50_fpn`` with random weights (no download; the
count does not depend on the weights), wrapped as the plugin wraps a loaded model. Its forward
calls are counted with a forward pre-hook during one ``bench.measure`` with the default
``num_images=8`` and ``stage_iters`` (8 images of one size, as ``image_size`` makes them).

"Before" is the count under the rules the issue measured, from the same settings: warm-up
raised to the number of distinct batches (``max(warmup, 8)``), ``iters`` timed calls, then a
separate stage pass of ``min(iters, 20)`` calls: 8 + 5 + 5 = 18.

The cost of the stage hooks inside the timed calls: the median latency with the stages taken
during the timed calls against ``stage_iters=0`` (no hooks), in alternating runs (``--rounds``)
of the same settings; on the CPU the hooks only read the clock (target: within noise, ~1%).
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE_VAL = ROOT / "example_suite/data/val/images"


def passes_before(warmup: int, iters: int, distinct_batches: int) -> int:
    """The previous rules (pytest_kpmodel before issue 18): see the module docstring."""
    return max(warmup, distinct_batches) + iters + min(iters, 20)


def images(n: int):
    """The example suite's first validation photos (uint8 CHW), else random ones."""
    import numpy as np
    import torch

    files = sorted(EXAMPLE_VAL.glob("*.jpg"))[:n] if EXAMPLE_VAL.is_dir() else []
    if len(files) == n:
        from PIL import Image

        out = []
        for f in files:
            with Image.open(f) as im:
                out.append(torch.from_numpy(np.asarray(im.convert("RGB")).copy()).permute(2, 0, 1))
        return out, f"{n} example-suite images"
    g = torch.Generator().manual_seed(0)
    return [
        torch.randint(0, 256, (3, 480, 640), dtype=torch.uint8, generator=g) for _ in range(n)
    ], f"{n} random images"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--image-size", type=int, nargs=2, default=(320, 480), metavar=("H", "W"),
                    help="kp_bench image_size (the issue's run used 800 1333)")  # fmt: skip
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds for the hook cost")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args(argv)

    import torch
    import torchvision

    from pytest_kpmodel.adapters.options import LoadOptions
    from pytest_kpmodel.adapters.torch_module import TorchDetectionModel
    from pytest_kpmodel.bench.measure import measure
    from pytest_kpmodel.bench.settings import BenchSettings

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    module = torchvision.models.detection.keypointrcnn_resnet50_fpn(
        weights=None, weights_backbone=None
    ).eval()
    model = TorchDetectionModel(module, LoadOptions(device=args.device), 17, "r50-fpn")
    raw, what = images(8)
    size = tuple(args.image_size)
    print(f"device {args.device}, torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"keypointrcnn_resnet50_fpn (random weights); {what} at {size[0]}x{size[1]}")  # fmt: skip

    calls: list[int] = []
    handle = module.register_forward_pre_hook(lambda *_: calls.append(1))
    settings = BenchSettings.from_kwargs(warmup=2, iters=5, image_size=size)
    try:
        r = measure(model, images=raw, settings=settings)
    finally:
        handle.remove()
    now = len(calls)
    before = passes_before(settings.warmup, settings.iters, settings.num_images)
    print()
    print("kp_bench(warmup=2, iters=5), num_images=8 (default), one image size:")
    print(f"  forward passes before {before}  now {now}  -> {before / now:.2f}x fewer "
          f"(now: {r.warmup} warm-up + {r.latency.iterations} timed, stages from the timed "
          f"calls: stage_pass={r.stages.get('stage_pass')})")  # fmt: skip
    expected = settings.forward_passes(shapes=1, device_type=torch.device(args.device).type)
    print(f"  BenchSettings.forward_passes says {expected}")

    folded, plain = [], []
    for i in range(args.rounds):
        order = [(None, folded), (0, plain)] if i % 2 == 0 else [(0, plain), (None, folded)]
        for stage_iters, out in order:
            s = BenchSettings.from_kwargs(warmup=1, iters=5, image_size=size,
                                          stage_iters=stage_iters)  # fmt: skip
            out.append(measure(model, images=raw, settings=s).latency.p50)
    f, p = statistics.median(folded), statistics.median(plain)
    print()
    print(f"stage hooks inside the timed calls: p50 {f:.1f} ms vs {p:.1f} ms without hooks "
          f"(median of {args.rounds} alternating rounds) -> ratio {f / p:.3f}")  # fmt: skip
    print(f"  per round: with {', '.join(f'{x:.1f}' for x in folded)}; "
          f"without {', '.join(f'{x:.1f}' for x in plain)}")  # fmt: skip
    return 0 if now == expected else 1


if __name__ == "__main__":
    sys.exit(main())
