"""Scale-out: 2 CPU ranks (torchrun, gloo) against 1 process, measured side by side in one run,
and a projection for COCO val and a corruption sweep on 8 GPUs.

(a) measured here: the session's own path (``KpSession.predictions`` = sharded prediction +
    gather, ``.eval`` = evaluate on rank 0 + broadcast, ``.corruption_eval`` = sharded sweep)
    on a generated set of COCO-sized (640x480) JPEGs and a small random-weight Keypoint R-CNN,
    1 process vs ``torchrun --nproc_per_node=2``, alternately, ``--repeats`` times (best of);
    start-up (imports, model load, process group) is excluded. The metrics of both runs must
    be identical (checked).
(b) measured here, per image, one CPU thread: JPEG decoding, packing/unpacking predictions for
    the gather, COCO evaluation as ``kp_eval`` does it (bootstrap 200, per keypoint, error
    analysis; on a synthetic 500-image set with ~3 people and ~6 detections per image, scaled
    linearly), and corrupting an image on the CPU.
(c) projected: 8 GPUs (``--gpus``), with ASSUMPTIONS given as parameters because no GPU is
    here: ``--gpu-ms-per-image`` (model inference per image on one GPU, default 40 ms: an
    assumption for Keypoint R-CNN R50-FPN fp32 at COCO size on a current data-centre GPU;
    measure yours with kp_bench and pass it), ``--gpu-corrupt-ms-per-image`` (default 2 ms),
    ``--decode-workers`` per rank (default 4, the plugin's cap) and ``--link-gbps``. Decoding
    overlaps inference in DataLoader workers; the evaluation runs once, on rank 0, and does not
    shrink with GPUs; in the sweep every rank corrupts every image (``ShardedSweep`` leaves
    ``corruption_eval.run`` unchanged), which does not shrink either.

    .venv/bin/python benchmarks/distributed.py [--images 32] [--batch-size 2] [--repeats 2]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MODEL_KWARGS = {"min_size": 320, "max_size": 427, "fpn_channels": 32, "box_head_dim": 64,
                "keypoint_head_depth": 2, "keypoint_head_channels": 32,
                "box_detections_per_img": 20, "box_score_thresh": 0.0}  # fmt: skip
SWEEP = {"corruptions": ["gaussian_noise", "contrast", "motion_blur"], "severities": [1, 3],
         "max_images": 8, "batch_size": 2}  # fmt: skip


# -- the generated set ------------------------------------------------------------------------------
def make_set(root: Path, n: int, seed: int = 0) -> Path:
    """COCO-sized JPEGs with smooth content (so they compress and decode like photos), one
    person each, and a random-weight model card pointing at them."""
    import numpy as np
    import torch
    from PIL import Image
    from safetensors.torch import save_file

    from pytest_kpmodel.keypoints import COCO_NAMES
    from pytest_kpmodel.provenance.digests import sha256_file
    from pytest_kpmodel.zoo import keypointrcnn_compact

    rng = np.random.default_rng(seed)
    (root / "data" / "images").mkdir(parents=True)
    images, anns = [], []
    w, h = 640, 480
    for i in range(n):
        low = rng.uniform(0, 255, (h // 32, w // 32, 3)).astype(np.uint8)
        pixels = np.asarray(Image.fromarray(low).resize((w, h), Image.BICUBIC))
        pixels = np.clip(pixels + rng.normal(0, 6, pixels.shape), 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(root / "data" / "images" / f"{i:05d}.jpg", quality=90)
        images.append({"id": i + 1, "file_name": f"{i:05d}.jpg", "width": w, "height": h})
        x0, y0 = rng.uniform(0, w / 2), rng.uniform(0, h / 2)
        bw, bh = rng.uniform(60, w / 2), rng.uniform(80, h / 2)
        kps = [v for _ in COCO_NAMES
               for v in (x0 + rng.uniform(0, bw), y0 + rng.uniform(0, bh), 2)]  # fmt: skip
        anns.append({"id": i + 1, "image_id": i + 1, "category_id": 1, "bbox": [x0, y0, bw, bh],
                     "area": bw * bh * 0.6, "iscrowd": 0, "keypoints": kps,
                     "num_keypoints": 17})  # fmt: skip
    ann = root / "data" / "annotations.json"
    ann.write_text(json.dumps({"images": images, "annotations": anns, "categories": [
        {"id": 1, "name": "person", "keypoints": list(COCO_NAMES), "skeleton": []}]}))  # fmt: skip
    torch.manual_seed(seed)
    module = keypointrcnn_compact(**MODEL_KWARGS).eval()
    weights = root / "model" / "model.safetensors"
    weights.parent.mkdir()
    save_file({k: v.contiguous() for k, v in module.state_dict().items()}, str(weights))
    kwargs = "\n".join(f"{k} = {json.dumps(v)}" for k, v in MODEL_KWARGS.items())
    card = root / "model" / "kpmodel.toml"
    card.write_text(
        f'schema = 1\n[model]\nname = "bench"\nversion = "0"\nformat = "safetensors"\n'
        f'weights = "model.safetensors"\nsha256 = "{sha256_file(weights)}"\n'
        f'architecture = "pytest_kpmodel.zoo:keypointrcnn_compact"\n[model.kwargs]\n{kwargs}\n'
        f'[dataset]\nannotations = "{ann}"\n'
    )
    return card


# -- (a) one run of the session's path, as 1 process or as a torchrun rank ------------------------
def worker(card: Path, batch_size: int, out: Path) -> None:
    import hashlib

    import torchvision.models.detection  # noqa: F401  (native ops loaded before the guard)

    from pytest_kpmodel.robustness.probes import CorruptionConfig
    from pytest_kpmodel.session import KpSession
    from pytest_kpmodel.settings import Settings

    kp = KpSession(Settings(model=card, device="cpu", batch_size=batch_size, no_cache=True))
    kp.corruption_config = CorruptionConfig.from_marker((), SWEEP)
    kp.model, kp.dataset  # noqa: B018 - start-up, not timed
    kp.dist.agree("start")  # the process group is up on every rank
    t0 = time.perf_counter()
    preds = kp.predictions
    t1 = time.perf_counter()
    metrics = kp.eval
    t2 = time.perf_counter()
    sweep = kp.corruption_eval
    t3 = time.perf_counter()
    kp.dist.agree("end")
    if kp.dist.is_main:
        digest = hashlib.sha256(
            json.dumps([metrics.to_json(), sweep.results], sort_keys=True, default=str).encode()
        ).hexdigest()
        out.write_text(json.dumps({"predict_s": t1 - t0, "eval_s": t2 - t1, "sweep_s": t3 - t2,
                                   "inference_s": preds.seconds, "digest": digest,
                                   "world": kp.dist.world_size}))  # fmt: skip
    from pytest_kpmodel.distributed.process_group import shutdown

    shutdown()


def launch(card: Path, batch_size: int, nproc: int, out: Path) -> dict:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("RANK", "WORLD_SIZE", "LOCAL_", "MASTER_", "PYTEST_"))}  # fmt: skip
    env["OMP_NUM_THREADS"] = "1"  # what torchrun sets per rank; the same for the 1-process run
    me = [str(Path(__file__).resolve()), "--worker", str(card), str(batch_size), str(out)]
    if nproc == 1:
        cmd = [sys.executable, *me]
    else:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               f"--nproc_per_node={nproc}", *me]  # fmt: skip
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return json.loads(out.read_text())


# -- (b) per-image CPU costs -------------------------------------------------------------------------
def per_image_costs(card: Path) -> dict[str, float]:
    import torch

    torch.set_num_threads(1)
    from pytest_kpmodel.adapters.base import Prediction
    from pytest_kpmodel.data import decode_image, load_dataset
    from pytest_kpmodel.distributed.wire import merge_shards, pack_predictions
    from pytest_kpmodel.keypoints import COCO_SIGMAS
    from pytest_kpmodel.metrics import evaluate
    from pytest_kpmodel.metrics.synthetic import flip_index, make_coco_set
    from pytest_kpmodel.robustness.corruptions import CORRUPTIONS, corruption

    ds = load_dataset(card.parent.parent / "data" / "annotations.json")
    t = time.perf_counter()
    for f in ds.files:
        decode_image(f)
    decode_ms = (time.perf_counter() - t) / len(ds) * 1e3

    # the gather: 20 detections x 17 keypoints per image (box_detections_per_img of R-CNN ~100,
    # after score filtering usually far fewer)
    g = torch.Generator().manual_seed(0)
    items = [(i, Prediction(torch.rand(20, 4, generator=g), torch.rand(20, generator=g),
                            torch.ones(20, dtype=torch.int64), torch.rand(20, 17, 3, generator=g)))
             for i in range(500)]  # fmt: skip
    t = time.perf_counter()
    blob = pack_predictions(items)
    merge_shards([blob], list(range(500)))
    pack_ms = (time.perf_counter() - t) / 500 * 1e3

    gt, results = make_coco_set(0, num_images=500, people_per_image=3.0, dets_per_person=1.5)
    t = time.perf_counter()
    evaluate(gt, results, sigmas=COCO_SIGMAS, flip_index=flip_index(17), bootstrap=200,
             per_keypoint=True, error_analysis=True)  # fmt: skip
    eval_ms = (time.perf_counter() - t) / 500 * 1e3
    t = time.perf_counter()
    evaluate(gt, results, sigmas=COCO_SIGMAS, flip_index=flip_index(17), bootstrap=0,
             per_keypoint=False, error_analysis=False)  # fmt: skip
    sweep_eval_ms = (time.perf_counter() - t) / 500 * 1e3

    img = decode_image(ds.files[0])[0].float().div(255)
    t = time.perf_counter()
    for name in CORRUPTIONS:
        corruption(name, 3, 0).apply([img], indices=[0])
    corrupt_ms = (time.perf_counter() - t) / len(CORRUPTIONS) * 1e3
    return {"decode_ms": decode_ms, "pack_ms": pack_ms, "bytes_per_image": len(blob) / 500,
            "eval_ms": eval_ms, "sweep_eval_ms": sweep_eval_ms, "cpu_corrupt_ms": corrupt_ms}  # fmt: skip


# -- (c) projection --------------------------------------------------------------------------------------
def project(c: dict[str, float], a: argparse.Namespace, gpus: int, images: int) -> dict[str, float]:
    """Seconds for kp_eval on ``images`` images with ``gpus`` ranks."""
    per_image = max(a.gpu_ms_per_image, c["decode_ms"] / a.decode_workers)  # decode overlaps
    predict = math.ceil(images / gpus) * per_image / 1e3
    gather = 0.0
    if gpus > 1:  # every rank unpacks every image; the bytes cross the link once per rank
        gather = images * c["pack_ms"] / 1e3 + images * c["bytes_per_image"] * 8 / (
            a.link_gbps * 1e9
        )
    evaluate = images * c["eval_ms"] / 1e3  # rank 0, once
    return {"predict": predict, "gather": gather, "evaluate": evaluate,
            "total": predict + gather + evaluate}  # fmt: skip


def project_sweep(c: dict[str, float], a: argparse.Namespace, gpus: int, images: int,
                  rounds: int) -> float:  # fmt: skip
    batches = math.ceil(images / a.sweep_batch)
    mine = math.ceil(batches / gpus) * a.sweep_batch  # whole batches per rank
    per_round = (
        min(mine, images) * a.gpu_ms_per_image / 1e3  # inference: sharded
        + images * a.gpu_corrupt_ms_per_image / 1e3  # corruption: every rank, every image
        + (images * c["pack_ms"] / 1e3 if gpus > 1 else 0.0)  # gather
        + images * c["sweep_eval_ms"] / 1e3  # evaluation (no bootstrap): rank 0
    )
    return rounds * per_round


def fmt_s(s: float) -> str:
    return f"{s:8.1f} s" if s < 600 else f"{s / 60:8.1f} min"


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker(Path(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4]))
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=32)
    ap.add_argument("--batch-size", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--gpus", type=int, default=8)
    ap.add_argument("--coco-images", type=int, default=5000)
    ap.add_argument("--sweep-rounds", type=int, default=75, help="15 corruptions x 5 severities")
    ap.add_argument("--sweep-images", type=int, nargs="+", default=[50, 5000])
    ap.add_argument("--sweep-batch", type=int, default=4)
    ap.add_argument("--gpu-ms-per-image", type=float, default=40.0,
                    help="ASSUMPTION: inference per image on one GPU")  # fmt: skip
    ap.add_argument("--gpu-corrupt-ms-per-image", type=float, default=2.0,
                    help="ASSUMPTION: one corruption of one image on the GPU")  # fmt: skip
    ap.add_argument("--decode-workers", type=int, default=4)
    ap.add_argument("--link-gbps", type=float, default=10.0)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="kp-dist-bench-") as tmp:
        root = Path(tmp)
        card = make_set(root, args.images)
        runs: dict[int, list[dict]] = {1: [], 2: []}
        for r in range(args.repeats):
            for nproc in (1, 2) if r % 2 == 0 else (2, 1):
                runs[nproc].append(launch(card, args.batch_size, nproc, root / f"{nproc}-{r}.json"))
        costs = per_image_costs(card)

    print(f"(a) {args.images} images 640x480, batch {args.batch_size}, {os.cpu_count()} CPU "
          f"cores (shared), OMP_NUM_THREADS=1 per process, best of {args.repeats}:")  # fmt: skip
    print(f"    {'':14s}{'1 process':>12s}{'2 ranks':>12s}{'speed-up':>10s}")
    for key, label in (("predict_s", "predict+gather"), ("eval_s", "evaluate"),
                       ("sweep_s", "sweep (6x8)")):  # fmt: skip
        one = min(x[key] for x in runs[1])
        two = min(x[key] for x in runs[2])
        print(f"    {label:14s}{one:11.2f}s{two:11.2f}s{one / two:9.2f}x")
    digests = {x["digest"] for x in runs[1] + runs[2]}
    print(f"    metrics identical across all runs: {len(digests) == 1}")
    spread = [statistics.pstdev([x["predict_s"] for x in runs[n]]) for n in (1, 2)]
    print(f"    (predict spread between repeats: {spread[0]:.2f}s / {spread[1]:.2f}s)")

    print("\n(b) per image, one CPU thread, measured:")
    print(f"    JPEG decode 640x480      {costs['decode_ms']:7.2f} ms")
    print(f"    pack+unpack (20 dets)    {costs['pack_ms']:7.3f} ms, "
          f"{costs['bytes_per_image'] / 1024:.1f} KiB")  # fmt: skip
    print(f"    COCO eval as kp_eval     {costs['eval_ms']:7.2f} ms  (bootstrap 200, per keypoint,"
          " error analysis)")  # fmt: skip
    print(f"    COCO eval, sweep round   {costs['sweep_eval_ms']:7.2f} ms  (no analyses)")
    print(
        f"    one corruption, CPU      {costs['cpu_corrupt_ms']:7.2f} ms  (mean of 15, severity 3)"
    )

    print(f"\n(c) projection, ASSUMING {args.gpu_ms_per_image:g} ms/image GPU inference, "
          f"{args.gpu_corrupt_ms_per_image:g} ms/image GPU corruption, {args.decode_workers} "
          f"decode workers per rank, {args.link_gbps:g} Gbit/s link; start-up and model load "
          "not included:")  # fmt: skip
    one = project(costs, args, 1, args.coco_images)
    many = project(costs, args, args.gpus, args.coco_images)
    print(f"    kp_eval on COCO val ({args.coco_images} images):")
    for k in ("predict", "gather", "evaluate", "total"):
        print(f"      {k:9s} 1 GPU {fmt_s(one[k])}   {args.gpus} GPUs {fmt_s(many[k])}")
    print(f"      speed-up {one['total'] / many['total']:.1f}x (evaluation on rank 0 does not "
          "shrink)")  # fmt: skip
    for n in args.sweep_images:
        s1 = project_sweep(costs, args, 1, n, args.sweep_rounds)
        s8 = project_sweep(costs, args, args.gpus, n, args.sweep_rounds)
        print(f"    {args.sweep_rounds}x corruption sweep on {n} images (batch "
              f"{args.sweep_batch}): 1 GPU {fmt_s(s1).strip()}, {args.gpus} GPUs "
              f"{fmt_s(s8).strip()}, speed-up {s1 / s8:.1f}x")  # fmt: skip
    print("    (the sweep keeps its sample in memory: 5000 COCO images are ~18 GB of float "
          "tensors per rank)")  # fmt: skip


if __name__ == "__main__":
    main()
