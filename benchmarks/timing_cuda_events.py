"""Fidelity of the plugin's latency on a GPU: ``bench.measure``'s median vs the same calls timed
with CUDA events (``torch.cuda.Event(enable_timing=True)`` recorded around each call on the
current stream), alternating rounds in one process. Target: within 3%.

    .venv/bin/python benchmarks/timing_cuda_events.py [--card CARD] [--rounds 5] [--iters 30]

The plugin synchronises the device before each timestamp (``perf_counter``); the events measure
the stream's time between the two records, so the two agree only if the synchronisation and
the host-side work of a call are where the plugin says they are. Needs CUDA: without it the
script says so and exits 2. Model and input as in ``timing_fidelity.py``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

from timing_fidelity import DEFAULT_CARD, plugin_timing  # benchmarks/ is on sys.path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--card", type=Path, default=DEFAULT_CARD)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--iters", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--device", default="cuda")
    args = ap.parse_args(argv)

    import torch

    if not torch.cuda.is_available() or not args.device.startswith("cuda"):
        print("no CUDA device: CUDA events need one")
        return 2
    model, x, label, plugin_ms = plugin_timing(args.card, args.device, args.iters, args.warmup)

    def events_ms() -> float:
        for _ in range(args.warmup):
            model.predict([x])
        times = []
        for _ in range(args.iters):
            start = torch.cuda.Event(enable_timing=True)
            end = torch.cuda.Event(enable_timing=True)
            start.record()
            model.predict([x])
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end))
        return statistics.median(times)

    print(f"model   {label} on {torch.cuda.get_device_name(model.device)}")
    print(f"input   {tuple(x.shape)}; {args.iters} timed calls per round, {args.warmup} warm-up")
    ours, theirs = [], []
    for r in range(args.rounds):
        pair = (
            (plugin_ms(), events_ms())
            if r % 2 == 0
            else tuple(reversed((events_ms(), plugin_ms())))
        )
        ours.append(pair[0])
        theirs.append(pair[1])
        print(f"round {r + 1}: plugin {pair[0]:8.2f} ms   CUDA events {pair[1]:8.2f} ms   "
              f"ratio {pair[0] / pair[1]:.3f}", flush=True)  # fmt: skip
    ma, mb = statistics.median(ours), statistics.median(theirs)
    ok = abs(ma / mb - 1) <= 0.03
    print(f"median over rounds: plugin {ma:.2f} ms   CUDA events {mb:.2f} ms   ratio "
          f"{ma / mb:.3f}; target within 3%: {'yes' if ok else 'NO'}")  # fmt: skip
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
