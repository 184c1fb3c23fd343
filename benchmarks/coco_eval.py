"""COCO evaluation speed: pycocotools against the plugin's metrics engine, side by side.

    .venv/bin/python benchmarks/coco_eval.py                # 5000 images, ~15k people, ~90k detections
    .venv/bin/python benchmarks/coco_eval.py --images 1000 --engines auto,faster-coco-eval,hotcoco

For box and keypoint evaluation separately and together, each timed from the same COCO dicts
to the summary stats: pycocotools (COCO + loadRes on copies, because it writes into its
inputs, + evaluate/accumulate/summarize; the loading counts in each row) against
the plugin: its engine alone (``metrics.engines.run_engine``: from the checked COCO dicts to the
stats, the engine's own loading included) and the whole ``pytest_kpmodel.metrics.evaluate``
(input checks included) with the analyses off, given plain dicts and given the results as
``kp_eval`` hands them over (``ResultArrays``: the same dicts with their columns as arrays,
which the checks read). Times are wall clock and CPU (process time over all threads;
steadier on a shared machine). The plugin is timed as the best of ``--repeat`` runs;
pycocotools runs once. Every engine's stats are checked equal to pycocotools' (1e-9) before
any ratio is printed.

Then, from the same run: the 200-replicate bootstrap at this size (the per-image
similarities it shares with the analyses, its own matching at every threshold, and the
replicates); and ``kp_eval``'s default path (the
``evaluate()`` call ``KpSession.eval`` makes: bootstrap and analyses asked for, computed only
when read) on an 80-category box set of 100 images against pycocotools' bbox evaluation.
cocoapi's ``instances_val2014`` 100-image sample needs the 2014 annotation file, which is
neither in pycocotools' package nor in the cocoapi repository (only its fake results are):
the set is synthesised (seeded, 80 categories, ~7 objects per image as in COCO, no
keypoints) and the output says so.

Both sets are timed as read from files (a JSON round trip), which is how annotation files reach
the plugin (``data.py``) and pycocotools (``COCO(file)``, ``loadRes(file)``): the generator
leaves its dicts scattered through memory, and every reader walking them (pycocotools, an
engine's parser, the input checks) then runs up to 2x slower than on the same values as
``json.loads`` lays them out. ``--in-memory`` times the generator's dicts instead. ``--analysis`` also times the full ``evaluate`` with every
analysis read (what ``--kp-report`` asks for).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import platform
import time

import numpy as np

from pytest_kpmodel.metrics import evaluate
from pytest_kpmodel.metrics.bootstrap import _prepare, bootstrap
from pytest_kpmodel.metrics.detections import ResultArrays
from pytest_kpmodel.metrics.engines import (
    available_engines,
    engine_version,
    resolve_engine,
    run_engine,
)
from pytest_kpmodel.metrics.inputs import prepare
from pytest_kpmodel.metrics.pairs import PairCache
from pytest_kpmodel.metrics.synthetic import make_coco_set


def as_read_from_files(gt: dict, results: list[dict]) -> tuple[dict, list[dict]]:
    """The same values laid out in memory as ``json.loads`` of their files lays them out."""
    return json.loads(json.dumps(gt)), json.loads(json.dumps(results))


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


def as_arrays(results: list[dict]) -> ResultArrays:
    """The results as ``kp_eval`` hands them to ``evaluate`` (equal dicts, plus columns)."""
    n = len(results)
    out = ResultArrays.from_columns(
        np.array([r["image_id"] for r in results], dtype=np.int64),
        int(results[0]["category_id"]) if n else 1,
        np.array([r["bbox"] for r in results], dtype=np.float64).reshape(n, 4),
        np.array([r["score"] for r in results], dtype=np.float64),
        np.array([r.get("keypoints", []) for r in results], dtype=np.float64).reshape(n, -1, 3),
    )
    if [dict(r) for r in out] != [{**r, "keypoints": r.get("keypoints", [])} for r in results]:
        raise SystemExit("ResultArrays differ from the results")
    if "keypoints" not in results[0]:
        for r in out:
            del r["keypoints"]
    return out


def plugin_run(
    gt: dict, results: list[dict], arrays: ResultArrays, what: str, engine: str, repeat: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Best (wall, CPU) seconds of ``repeat`` runs of the engine alone (on checked input), of
    the whole evaluate() (input checks included) on dicts and on ``ResultArrays``, and the
    stats."""
    types = ["bbox", "keypoints"] if what == "both" else [what]
    best = {k: np.array([np.inf, np.inf]) for k in ("engine", "dicts", "arrays")}
    stats = np.zeros(0)
    inp = prepare(gt, results)
    fast = dict(engine=engine, iou_types=types, bootstrap=0, per_keypoint=False,
                error_analysis=False)  # fmt: skip
    for _ in range(repeat):
        t0 = _clock()
        run_engine(engine, inp, types)
        best["engine"] = np.minimum(best["engine"], _clock() - t0)
        for key, given in (("dicts", results), ("arrays", arrays)):
            t0 = _clock()
            m = evaluate(gt, given, **fast)
            best[key] = np.minimum(best[key], _clock() - t0)
            got = np.concatenate(
                [(m.bbox if t == "bbox" else m.keypoints).as_array() for t in types]
            )
            if stats.size and not np.array_equal(got, stats):
                raise SystemExit(f"evaluate() on {key} differs")
            stats = got
    return best["engine"], best["dicts"], best["arrays"], stats


def bootstrap_run(gt: dict, results: list[dict]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(wall, CPU) of the per-image similarities the bootstrap shares with the analyses, of
    its matching at every threshold (``_prepare``, done once per call), and of the 200
    replicates on top: ``bootstrap()``'s whole time less the matching timed just before it."""
    inp = prepare(gt, results)
    t0 = _clock()
    cache = PairCache(inp)
    for iou_type in ("bbox", "keypoints"):
        for cat in inp.cat_ids:
            cache.iou(cat, 100) if iou_type == "bbox" else cache.oks(cat, 20)
    shared = _clock() - t0
    t0 = _clock()
    for iou_type in ("bbox", "keypoints"):
        _prepare(cache, iou_type)
    matching = _clock() - t0
    t0 = _clock()
    bootstrap(inp, ["bbox", "keypoints"], replicates=200, cache=cache)
    return shared, matching, _clock() - t0 - matching


def box80_run(seed: int, repeat: int, in_memory: bool) -> None:
    """kp_eval's default evaluate() against pycocotools' bbox evaluation, 80 categories."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    gt, results = make_coco_set(seed, num_images=100, num_categories=80, people_per_image=7.3,
                                dets_per_person=2.0, false_positives_per_image=10.0)  # fmt: skip
    for c in gt["categories"]:
        c.pop("keypoints", None), c.pop("skeleton", None)
    for a in gt["annotations"]:
        a.pop("keypoints", None), a.pop("num_keypoints", None)
    for r in results:
        r.pop("keypoints", None)
    if not in_memory:
        gt, results = as_read_from_files(gt, results)
    print(
        f"\n80-category box set: {len(gt['images'])} images, {len(gt['annotations'])} objects, "
        f"{len(results)} detections (synthesised: cocoapi's instances_val2014 annotation file "
        "is not on this machine, in pycocotools' package or in the cocoapi repository)"
    )
    with contextlib.redirect_stdout(io.StringIO()):
        t0 = _clock()
        g = COCO()
        g.dataset = {**gt, "annotations": [dict(a) for a in gt["annotations"]]}
        g.createIndex()
        e = COCOeval(g, g.loadRes([dict(r) for r in results]), "bbox")
        e.evaluate()
        e.accumulate()
        e.summarize()
        ref = _clock() - t0
    best, full = np.array([np.inf, np.inf]), np.array([np.inf, np.inf])
    for _ in range(repeat):
        t0 = _clock()
        m = evaluate(gt, results)  # the defaults KpSession.eval uses: analyses on, lazily
        best = np.minimum(best, _clock() - t0)
        if float(np.max(np.abs(m.bbox.as_array() - e.stats))) > 1e-9:
            raise SystemExit("box80: differs from pycocotools")
        t0 = _clock()
        m.to_json()  # what --kp-report reads: the 200-replicate bootstrap on top
        full = np.minimum(full, best + _clock() - t0)
    print(f"{'':<22} {'seconds wall/CPU':>18} {'pycocotools / it (wall/CPU)':>30}")
    print(f"{'pycocotools bbox':<22} {ref[0]:>8.3f}/{ref[1]:<9.3f}")
    for label, v in (("kp_eval default path", best), ("+ report (bootstrap)", full)):
        r = ref / v
        print(f"{label:<22} {v[0]:>8.3f}/{v[1]:<9.3f} {r[0]:>14.1f}x/{r[1]:.1f}x")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--engines", default="auto", help="comma-separated: auto and/or engine names")
    ap.add_argument("--in-memory", action="store_true",
                    help="time the generator's dicts, not the sets as read from files")  # fmt: skip
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
    if not args.in_memory:
        gt, results = as_read_from_files(gt, results)
    people = sum(1 for a in gt["annotations"] if not a["iscrowd"])
    print(
        f"set: {len(gt['images'])} images, {people} people (+{len(gt['annotations']) - people} "
        f"crowd), {len(results)} detections, 17 keypoints "
        f"(generated in {time.perf_counter() - t0:.1f} s; timed "
        f"{'as generated, in memory' if args.in_memory else 'as read from files'})"
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
    arrays = as_arrays(results)
    rows = []
    for what in ("bbox", "keypoints", "both"):
        ref_s, ref_stats = reference[what]
        for engine in engines:
            eng_s, total_s, arr_s, stats = plugin_run(
                gt, results, arrays, what, engine, args.repeat
            )
            diff = float(np.max(np.abs(stats - ref_stats)))
            if diff > 1e-9:
                raise SystemExit(f"{engine} {what} differs from pycocotools by {diff}")
            rows.append((what, engine, ref_s, eng_s, total_s, arr_s, ref_stats[0]))

    print(
        "\nseconds as wall/CPU, speed-up = pycocotools / plugin as wall/CPU; 'engine' is the "
        "engine from COCO dicts to stats, 'evaluate()' adds the input checks on plain dicts, "
        "'kp_eval' on the results as kp_eval hands them over (ResultArrays)"
    )
    print(
        f"{'evaluated':<10} {'engine':<23} {'pycocotools':>12} {'engine':>12} {'speed-up':>12} "
        f"{'evaluate()':>12} {'speed-up':>12} {'kp_eval':>12} {'speed-up':>12}  AP (equal)"
    )
    for what, engine, ref_s, eng_s, total_s, arr_s, ap_value in rows:
        label = f"{engine} {engine_version(engine)}"
        name = "box + kp" if what == "both" else what

        def pair(v: np.ndarray, fmt: str) -> str:
            return f"{v[0]:{fmt}}/{v[1]:{fmt}}"

        print(
            f"{name:<10} {label:<23} {pair(ref_s, '.2f'):>12} {pair(eng_s, '.3f'):>12} "
            f"{pair(ref_s / eng_s, '.1f') + 'x':>12} {pair(total_s, '.3f'):>12} "
            f"{pair(ref_s / total_s, '.1f') + 'x':>12} {pair(arr_s, '.3f'):>12} "
            f"{pair(ref_s / arr_s, '.1f') + 'x':>12}  {ap_value:.4f}"
        )

    shared, matching, replicates = bootstrap_run(gt, results)
    print(
        f"\nbootstrap, 200 replicates, box + keypoints, {len(gt['images'])} images: the "
        f"per-image similarities (shared with the analyses) {shared[0]:.2f} s wall / "
        f"{shared[1]:.2f} s CPU, its matching at the 10 thresholds {matching[0]:.2f} s / "
        f"{matching[1]:.2f} s, then the 200 replicates {replicates[0]:.2f} s / "
        f"{replicates[1]:.2f} s"
    )
    box80_run(args.seed, args.repeat, args.in_memory)

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
