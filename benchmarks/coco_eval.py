"""COCO evaluation speed: pycocotools against the plugin's metrics engine, side by side.

    .venv/bin/python benchmarks/coco_eval.py                # 5000 images, ~15k people, ~90k detections
    .venv/bin/python benchmarks/coco_eval.py --images 1000 --engines auto,faster-coco-eval,hotcoco

For box and keypoint evaluation separately and together, each timed from the same COCO dicts
to the summary stats: pycocotools (COCO + loadRes on copies, because it writes into its
inputs, + evaluate/accumulate/summarize; the loading counts in each row) against
the plugin: its engine alone (``metrics.engines.run_engine``: from the checked COCO dicts to the
stats, the engine's own loading included) and the whole ``pytest_kpmodel.metrics.evaluate``
(input checks included) with the analyses off. Times are wall clock and CPU (process time
over all threads; steadier on a shared machine). The plugin is timed as the best of
``--repeat`` runs; pycocotools runs once. Every engine's stats are
checked equal to pycocotools' (1e-9) before any ratio is printed. ``--analysis`` also times
the full ``evaluate`` (per-keypoint AP/OKS/PCK, error analysis, 200 bootstrap replicates).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import platform
import time

import numpy as np

from pytest_kpmodel.metrics import evaluate
from pytest_kpmodel.metrics.engines import (
    available_engines,
    engine_version,
    resolve_engine,
    run_engine,
)
from pytest_kpmodel.metrics.inputs import prepare
from pytest_kpmodel.metrics.synthetic import make_coco_set


def _clock() -> np.ndarray:
    """(wall, CPU) seconds; CPU is this process's time over all threads."""
    return np.array([time.perf_counter(), time.process_time()])


def pycocotools_run(gt: dict, results: list[dict]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """(wall, CPU) seconds and stats for bbox, keypoints and both; each includes the loading."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    out = {}
    with contextlib.redirect_stdout(io.StringIO()):
        t0 = _clock()
        g = COCO()
        g.dataset = {**gt, "annotations": [dict(a) for a in gt["annotations"]]}
        g.createIndex()
        d = g.loadRes([dict(r) for r in results])
        load = _clock() - t0
        for iou_type in ("bbox", "keypoints"):
            t0 = _clock()
            e = COCOeval(g, d, iou_type)
            e.evaluate()
            e.accumulate()
            e.summarize()
            out[iou_type] = (load + _clock() - t0, np.asarray(e.stats))
    out["both"] = (
        out["bbox"][0] + out["keypoints"][0] - load,
        np.concatenate([out["bbox"][1], out["keypoints"][1]]),
    )
    return out


def plugin_run(
    gt: dict, results: list[dict], what: str, engine: str, repeat: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Best (wall, CPU) seconds of ``repeat`` runs of the engine alone (on checked input) and
    of the whole evaluate() (input checks included), and the stats."""
    types = ["bbox", "keypoints"] if what == "both" else [what]
    best_engine = np.array([np.inf, np.inf])
    best_total = np.array([np.inf, np.inf])
    stats = np.zeros(0)
    inp = prepare(gt, results)
    for _ in range(repeat):
        t0 = _clock()
        run_engine(engine, inp, types)
        best_engine = np.minimum(best_engine, _clock() - t0)
        t0 = _clock()
        m = evaluate(
            gt,
            results,
            engine=engine,
            iou_types=types,
            bootstrap=0,
            per_keypoint=False,
            error_analysis=False,
        )
        best_total = np.minimum(best_total, _clock() - t0)
        stats = np.concatenate([(m.bbox if t == "bbox" else m.keypoints).as_array() for t in types])
    return best_engine, best_total, stats


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--engines", default="auto", help="comma-separated: auto and/or engine names")
    ap.add_argument("--analysis", action="store_true", help="also time the full evaluate()")
    args = ap.parse_args(argv)

    t0 = time.perf_counter()
    gt, results = make_coco_set(
        args.seed,
        num_images=args.images,
        people_per_image=3.3,
        dets_per_person=2.5,
        false_positives_per_image=10.0,
        many_dets_rate=0.01,
    )
    people = sum(1 for a in gt["annotations"] if not a["iscrowd"])
    print(
        f"set: {len(gt['images'])} images, {people} people (+{len(gt['annotations']) - people} "
        f"crowd), {len(results)} detections, 17 keypoints "
        f"(generated in {time.perf_counter() - t0:.1f} s)"
    )
    print(
        f"python {platform.python_version()}, installed engines: {', '.join(available_engines())}"
    )
    engines: list[str] = []
    for name in args.engines.split(","):
        resolved = resolve_engine(name.strip())
        if resolved not in engines:
            engines.append(resolved)

    reference = pycocotools_run(gt, results)
    rows = []
    for what in ("bbox", "keypoints", "both"):
        ref_s, ref_stats = reference[what]
        for engine in engines:
            eng_s, total_s, stats = plugin_run(gt, results, what, engine, args.repeat)
            diff = float(np.max(np.abs(stats - ref_stats)))
            if diff > 1e-9:
                raise SystemExit(f"{engine} {what} differs from pycocotools by {diff}")
            rows.append((what, engine, ref_s, eng_s, total_s, ref_stats[0]))

    print(
        "\nseconds as wall/CPU, speed-up = pycocotools / plugin as wall/CPU; 'engine' is the "
        "engine from COCO dicts to stats, 'evaluate()' adds the input checks"
    )
    print(
        f"{'evaluated':<10} {'engine':<23} {'pycocotools':>12} {'engine':>12} {'speed-up':>12} "
        f"{'evaluate()':>12} {'speed-up':>12}  AP (equal)"
    )
    for what, engine, ref_s, eng_s, total_s, ap_value in rows:
        label = f"{engine} {engine_version(engine)}"
        name = "box + kp" if what == "both" else what

        def pair(v: np.ndarray, fmt: str) -> str:
            return f"{v[0]:{fmt}}/{v[1]:{fmt}}"

        print(
            f"{name:<10} {label:<23} {pair(ref_s, '.2f'):>12} {pair(eng_s, '.3f'):>12} "
            f"{pair(ref_s / eng_s, '.1f') + 'x':>12} {pair(total_s, '.3f'):>12} "
            f"{pair(ref_s / total_s, '.1f') + 'x':>12}  {ap_value:.4f}"
        )

    if args.analysis:
        t0 = _clock()
        m = evaluate(gt, results, engine=engines[0], bootstrap=200)
        total = _clock() - t0
        ci = m.bootstrap["keypoints"]["AP"] if m.bootstrap else None
        print(
            f"\nfull evaluate() with {engines[0]} (box + keypoints, per-keypoint AP/OKS/PCK, "
            f"error analysis, 200 bootstrap replicates): {total[0]:.2f} s wall, "
            f"{total[1]:.2f} s CPU; keypoint AP {m.keypoints.AP:.4f}, 95% CI "
            f"[{ci.low:.4f}, {ci.high:.4f}]"
        )


if __name__ == "__main__":
    main()
