"""Throughput of the plugin's full prediction path vs a bare loop over pre-decoded tensors.

(a) bare: the model's nn.Module called on images decoded beforehand, under inference_mode.
(b) plugin: ``predictions.predict_dataset``: decoding in DataLoader workers, device transfer,
    the adapter's predict, conversion to ``Prediction`` and copy back to the CPU.
Same model, images, batch size and device, measured alternately in one run. Target: b/a >= 0.9.

    .venv/bin/python benchmarks/eval_pipeline.py [--card CARD] [--batch-size N] [--repeats R]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CARD = ROOT / "example_suite/models/kp-tiny-base/kpmodel.toml"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--card", type=Path, default=DEFAULT_CARD)
    ap.add_argument("--dataset", type=Path, default=None)
    ap.add_argument("--batch-size", type=int, default=1)
    ap.add_argument("--max-images", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--device", default=None)
    args = ap.parse_args()

    import torch

    from pytest_kpmodel.data import load_images
    from pytest_kpmodel.predictions import predict_dataset
    from pytest_kpmodel.session import KpSession
    from pytest_kpmodel.settings import Settings

    settings = Settings(
        model=args.card,
        dataset=args.dataset,
        device=args.device,
        batch_size=args.batch_size,
        max_images=args.max_images,
    )
    run = KpSession(settings)
    model, ds = run.model, run.dataset
    device = model.device
    n = len(ds)
    decoded = load_images(ds, list(range(n)))
    module = model.module

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    def bare() -> float:
        sync()
        t = time.perf_counter()
        with torch.inference_mode():
            for s in range(0, n, args.batch_size):
                batch = [im.to(device).float().div_(255) for im in decoded[s : s + args.batch_size]]
                module(batch)
        sync()
        return n / (time.perf_counter() - t)

    def plugin() -> float:
        sync()
        t = time.perf_counter()
        predict_dataset(model, ds, args.batch_size)
        sync()
        return n / (time.perf_counter() - t)

    bare(), plugin()  # warm-up: allocator, worker start-up code paths, lazy imports
    a, b = [], []
    for _ in range(args.repeats):
        a.append(bare())
        b.append(plugin())
    ma, mb = statistics.median(a), statistics.median(b)
    print(f"model {run.card.model.name}  images {n}  batch {args.batch_size}  device {device}")
    print(f"(a) bare loop on decoded tensors : {ma:8.2f} img/s  runs {[round(x, 2) for x in a]}")
    print(f"(b) plugin prediction path       : {mb:8.2f} img/s  runs {[round(x, 2) for x in b]}")
    print(f"ratio b/a = {mb / ma:.3f}  (target >= 0.9)")


if __name__ == "__main__":
    main()
