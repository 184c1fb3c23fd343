"""Fidelity of the plugin's latency: ``bench.measure``'s median vs ``torch.utils.benchmark.Timer``.

Same model, same input tensor, same process, same thread count (the Timer gets
``num_threads=torch.get_num_threads()`` explicitly). The two are measured alternately in
``--rounds`` rounds (the order flips every round) so that drift — thermal, a background job on
a shared machine — hits both alike. Printed: each round's two medians, the medians over rounds,
their ratio (plugin / Timer) and the median of the per-round ratios. Target: within 3 %.

Model: ``example_suite/models/kp-tiny-base/kpmodel.toml`` when it exists, else
``pytest_kpmodel.zoo.keypointrcnn_compact()`` with random weights; input: the first image of
the card's evaluation set (else ``example_suite/data/val``, else a generated one).

    .venv/bin/python benchmarks/timing_fidelity.py [--card CARD] [--rounds 7] [--iters 30]
        [--threads N] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CARD = ROOT / "example_suite/models/kp-tiny-base/kpmodel.toml"
EXAMPLE_VAL = ROOT / "example_suite/data/val/annotations.json"


def load_model_and_image(card_path: Path, device: str):
    import torch

    from pytest_kpmodel.adapters import load_model
    from pytest_kpmodel.adapters.options import LoadOptions
    from pytest_kpmodel.adapters.torch_module import TorchDetectionModel
    from pytest_kpmodel.data import load_dataset, load_images

    annotations = None
    if card_path.is_file():
        from pytest_kpmodel.card import load_card

        card = load_card(card_path)
        model = load_model(card, LoadOptions(device=device))
        label = f"{card.model.name} ({card_path.relative_to(ROOT)})"
        annotations = card.dataset.annotations
    else:
        from pytest_kpmodel.zoo import keypointrcnn_compact

        torch.manual_seed(0)
        model = TorchDetectionModel(keypointrcnn_compact().eval(), LoadOptions(device=device), 17)
        label = "zoo.keypointrcnn_compact() (random weights)"
    if annotations is None or not Path(annotations).is_file():
        annotations = EXAMPLE_VAL if EXAMPLE_VAL.is_file() else None
    if annotations is None:
        sys.path.insert(0, str(ROOT / "tests"))
        from kp_factories import make_dataset

        annotations = make_dataset(Path(tempfile.mkdtemp()), n=1, size=(640, 480))
    image = load_images(load_dataset(annotations), [0])[0]
    return model, image, label


def plugin_timing(card: Path, device: str, iters: int, warmup: int):
    """(model, its prepared input, label, plugin_ms): ``plugin_ms()`` is the plugin's median
    latency of ``iters`` timed calls after ``warmup``, as ``kp_bench`` measures it."""
    from pytest_kpmodel.bench.measure import measure, prepare_images
    from pytest_kpmodel.bench.settings import BenchSettings

    model, image, label = load_model_and_image(card, device)
    x = prepare_images([image], None)[0].to(model.device)
    settings = BenchSettings(
        iters=iters, warmup=warmup, image_size=None, num_images=1, stage_iters=0
    )

    def plugin_ms() -> float:
        return measure(model, images=[x], settings=settings).latency.p50

    return model, x, label, plugin_ms


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--card", type=Path, default=DEFAULT_CARD)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--iters", type=int, default=30, help="timed calls per plugin round")
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()

    import torch
    from torch.utils.benchmark import Timer

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    model, x, label, plugin_ms = plugin_timing(args.card, args.device, args.iters, args.warmup)

    timer = Timer(
        stmt="model.predict(batch)",
        globals={"model": model, "batch": [x]},
        num_threads=threads,
        label="predict",
    )
    first = plugin_ms()  # also warms the model for the Timer
    budget = max(0.5, args.iters * first / 1000.0)  # about as many calls as the plugin times

    def timer_ms() -> float:
        m = timer.blocked_autorange(min_run_time=budget)
        return m.median * 1000.0

    print(f"model   {label}")
    print(f"input   {tuple(x.shape)} on {model.device}; torch threads {threads}")
    print(f"plugin  bench.measure median of {args.iters} synchronised calls per round")
    print(f"timer   torch.utils.benchmark.Timer.blocked_autorange(min_run_time={budget:.2f}s)")
    ours, theirs, ratios = [], [], []
    for r in range(args.rounds):
        if r % 2 == 0:
            a = plugin_ms()
            b = timer_ms()
        else:
            b = timer_ms()
            a = plugin_ms()
        ours.append(a)
        theirs.append(b)
        ratios.append(a / b)
        print(
            f"round {r + 1}: plugin {a:8.2f} ms   Timer {b:8.2f} ms   ratio {a / b:.3f}", flush=True
        )
    ma, mb = statistics.median(ours), statistics.median(theirs)
    ratio = ma / mb
    print(f"median over rounds: plugin {ma:.2f} ms   Timer {mb:.2f} ms")
    print(f"ratio plugin/Timer {ratio:.3f} (median of per-round ratios "
          f"{statistics.median(ratios):.3f}); target within 3%: "
          f"{'yes' if abs(ratio - 1) <= 0.03 else 'NO'}")  # fmt: skip


if __name__ == "__main__":
    main()
