"""A cached re-run of an accuracy spec, as a user runs it, against pycocotools' evaluate alone.

    .venv/bin/python benchmarks/cached_rerun.py              # 5000 images, ~91k detections
    .venv/bin/python benchmarks/cached_rerun.py --images 1000 --rounds 3

A sandbox holds a COCO keypoint set (seeded synthetic, 5000 images, ~15k people, ~91k
detections; the image files are empty: a cache hit never decodes them), the example suite's
kp-tiny-base card and a spec with ``kp_eval`` and ``kp_thresholds(box_ap=, kp_ap=)``. The
prediction cache is primed with those detections under the key the run computes, so the run
is a re-run whose predictions are cached.

Timed alternately, ``--rounds`` times each, in one run:

(a) the whole ``pytest`` process on the spec (interpreter start, plugin, card, ground truth
    checks, the cache read, box and keypoint evaluation, the gates), with bytecode caching
    on as in a default install (this project's machines set PYTHONDONTWRITEBYTECODE=1);
(b) pycocotools' evaluate alone on the same ground truth and detections, in this process:
    ``COCO`` + ``loadRes`` + ``evaluate``/``accumulate``/``summarize`` for bbox and keypoints
    (the JSON already parsed: no file reading counts for it).

Prints both as wall clock and CPU time (the child's user + system; steadier on a shared
machine), their ratio b/a (target >= 4) and whether the run imported torch or hypothesis (a
conftest in the sandbox records ``sys.modules`` at the end of the session).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from startup import timed_pytest  # benchmarks/ on sys.path

ROOT = Path(__file__).resolve().parents[1]
CARD = ROOT / "example_suite/models/kp-tiny-base/kpmodel.toml"

SPEC = """
import pytest

def test_eval(kp_eval):
    assert kp_eval.keypoints["AP"] > 0 and kp_eval.bbox["AP"] > 0

@pytest.mark.kp_thresholds(box_ap=0.05, kp_ap=0.05)
def test_accuracy_gates():
    pass
"""
# Records what the run imported, at the end of the session (before hypothesis' own terminal
# summary, which imports hypothesis in every pytest run).
CONFTEST = """
import json, sys
def pytest_sessionfinish(session):
    heavy = sorted(m for m in ("torch", "torchvision", "hypothesis") if m in sys.modules)
    open("imported.json", "w").write(json.dumps(heavy))
"""


def build_sandbox(folder: Path, images: int, seed: int) -> tuple[dict, list[dict], int]:
    """The set, the spec and the primed cache in ``folder``; returns (gt, results, count) with
    the results as the cached run reads them back."""
    import torch

    from pytest_kpmodel.adapters.base import Prediction
    from pytest_kpmodel.metrics.synthetic import make_coco_set
    from pytest_kpmodel.predictions import PredictionSet, load, save
    from pytest_kpmodel.session import KpSession
    from pytest_kpmodel.settings import Settings

    gt, results = make_coco_set(seed, num_images=images, people_per_image=3.3,
                                dets_per_person=2.5, false_positives_per_image=10.0,
                                many_dets_rate=0.01)  # fmt: skip
    (folder / "images").mkdir()
    for im in gt["images"]:
        (folder / "images" / im["file_name"]).touch()
    ann = folder / "annotations.json"
    ann.write_text(json.dumps(gt))
    (folder / "test_accuracy.py").write_text(SPEC)
    (folder / "conftest.py").write_text(CONFTEST)
    (folder / "pytest.ini").write_text("[pytest]\n")
    cache_dir = folder / ".pytest_cache" / "d" / "kpmodel" / "predictions"
    # The key the run computes: same card, set and settings (device resolved the same way).
    run = KpSession(Settings(model=CARD, dataset=ann, cache_dir=cache_dir, rootdir=folder))
    key = run.prediction_key()
    by_image: dict[int, list[dict]] = {}
    for r in results:
        by_image.setdefault(r["image_id"], []).append(r)
    preds = []
    for image_id in run.dataset.image_ids:
        rs = by_image.get(image_id, [])
        box = torch.tensor([r["bbox"] for r in rs], dtype=torch.float32).reshape(-1, 4)
        box[:, 2:] += box[:, :2]  # x, y, w, h -> x1, y1, x2, y2
        kps = torch.tensor([r["keypoints"] for r in rs], dtype=torch.float32).reshape(-1, 17, 3)
        preds.append(Prediction(boxes=box, scores=torch.tensor([r["score"] for r in rs]),
                                labels=torch.ones(len(rs), dtype=torch.int64),
                                keypoints=kps))  # fmt: skip
    path = cache_dir / f"{key}.npz"
    save(path, PredictionSet(list(run.dataset.image_ids), preds))
    cached = load(path, key)
    assert cached is not None
    back = cached.to_coco_results(run.dataset.category_id)
    return gt, back, len(back)


def pytest_run(folder: Path) -> tuple[float, float]:
    """(wall, CPU) seconds of the whole pytest process."""
    args = [f"--kp-model={CARD}", f"--kp-dataset={folder / 'annotations.json'}", "test_accuracy.py"]
    return timed_pytest(folder, args, "2 passed", {"OMP_NUM_THREADS": "1"})


def pycocotools_run(gt: dict, results: list[dict]) -> tuple[float, float]:
    """(wall, CPU) seconds of pycocotools' evaluate, box and keypoints."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        t0, c0 = time.perf_counter(), time.process_time()
        g = COCO()
        g.dataset = {**gt, "annotations": [dict(a) for a in gt["annotations"]]}
        g.createIndex()
        d = g.loadRes([dict(r) for r in results])
        for iou_type in ("bbox", "keypoints"):
            e = COCOeval(g, d, iou_type)
            e.evaluate()
            e.accumulate()
            e.summarize()
        return time.perf_counter() - t0, time.process_time() - c0


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="kp-cached-rerun-") as tmp:
        folder = Path(tmp)
        gt, results, count = build_sandbox(folder, args.images, args.seed)
        people = sum(1 for a in gt["annotations"] if not a["iscrowd"])
        print(f"set: {len(gt['images'])} images, {people} people, {count} detections; "
              f"card {CARD.parent.name}; python {sys.version.split()[0]}")  # fmt: skip
        pytest_run(folder)  # the first run writes pytest's and the bytecode caches; not timed
        runs, refs = [], []
        for _ in range(args.rounds):
            runs.append(pytest_run(folder))
            refs.append(pycocotools_run(gt, results))
        imported = json.loads((folder / "imported.json").read_text())
    a, b = (statistics.median(x[0] for x in v) for v in (runs, refs))
    ac, bc = (statistics.median(x[1] for x in v) for v in (runs, refs))
    print("seconds, median of the rounds: wall / CPU (CPU is steadier on a shared machine)")
    print(
        f"(a) cached re-run, whole pytest process : {a:7.2f} / {ac:6.2f}  runs {[(round(w, 2), round(c, 2)) for w, c in runs]}"
    )
    print(
        f"(b) pycocotools evaluate alone (box+kp) : {b:7.2f} / {bc:6.2f}  runs {[(round(w, 2), round(c, 2)) for w, c in refs]}"
    )
    print(f"ratio b/a = {b / a:.2f}x wall, {bc / ac:.2f}x CPU faster (target >= 4x); the run "
          f"imported: {', '.join(imported) or 'neither torch nor hypothesis'}")  # fmt: skip


if __name__ == "__main__":
    main()
