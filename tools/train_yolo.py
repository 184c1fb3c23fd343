"""Train the small YOLO-pose reference model on the CPU with Ultralytics, on synthetic people.

Run it with a Python where the ``ultralytics`` package (AGPL-3.0) is importable; the plugin itself
never needs it. Nothing is downloaded: the model is built from the package's own yaml (no
pretrained weights), ``YOLO_OFFLINE=1`` turns off Ultralytics' online checks, the settings'
``sync`` (anonymous usage events) is turned off, and the one font Ultralytics looks for before
training (``Arial.ttf``, fetched from the internet when missing) is provided from matplotlib's
bundled DejaVu Sans in a private config folder.

Steps:

1. render ``--num-images`` training images with :func:`synth_data.render` (seed ``--data-seed``,
   never the validation set's seed 7) and write them in YOLO pose format into ``--work``
   (``images/train/*.jpg``, ``labels/train/*.txt``: ``0 cx cy w h`` and 17 x ``x y v``, all
   normalised to the image size); the COCO validation set ``--val`` is converted the same way,
   for Ultralytics' per-epoch validation (monitoring only: the last epoch's weights are shipped,
   nothing is selected on the validation set);
2. train with fixed seeds (``seed``, ``deterministic=True``) on the CPU;
3. write into ``--out``: ``NAME.pt`` (the stripped fp16 checkpoint Ultralytics writes as
   ``last.pt``, unchanged), ``loss.csv`` (Ultralytics' ``results.csv``), ``loss.png``,
   ``train.log``, ``TRAINING.md``, ``LICENSE`` (AGPL-3.0) and ``kpmodel.toml``;
4. measure on ``--val`` twice: with Ultralytics' own ``val`` (its OKS, its matching) and with
   pycocotools' COCOeval on Ultralytics' predictions converted to COCO results.

Example (the shipped model's exact command is at the top of its ``TRAINING.md``)::

    nice -n 10 /work/venvs/ul-train/bin/python tools/train_yolo.py \\
        --out example_suite/models/kp-tiny-yolo --work /work/build/kp-tiny-yolo \\
        --num-images 6000 --epochs 30 --seed 0 --val example_suite/data/val/annotations.json
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import logging
import math
import os
import re
import shlex
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

_TOOLS = Path(__file__).resolve().parent
_ROOT = _TOOLS.parent
for _p in (str(_ROOT), str(_TOOLS)):
    if _p not in sys.path:
        sys.path.insert(0, _p)

import synth_data  # noqa: E402
import train  # noqa: E402  (card, metrics and log helpers shared with the R-CNN script)

from pytest_kpmodel.keypoints import COCO17, COCO_NAMES  # noqa: E402

VAL_SEED = 7  # tools/synth_data.py's seed of example_suite/data/val: never trained on
REQUIRES = ["torch>=2.4,<3", "torchvision>=0.19,<1"]
PYTHON = ">=3.10"
SPDX = "AGPL-3.0-only"
TRAIN_LOSSES = ("box_loss", "pose_loss", "kobj_loss", "cls_loss", "dfl_loss")


# --------------------------------------------------------------------------------------------
# Offline Ultralytics
# --------------------------------------------------------------------------------------------
def offline_environment(config_dir: Path, threads: int) -> None:
    """Environment for an Ultralytics that never reaches the network; before it is imported."""
    config_dir.mkdir(parents=True, exist_ok=True)
    os.environ["YOLO_OFFLINE"] = "1"
    os.environ["YOLO_CONFIG_DIR"] = str(config_dir)
    os.environ["OMP_NUM_THREADS"] = str(threads)
    os.environ.setdefault("MPLBACKEND", "Agg")
    # check_det_dataset() looks for Arial.ttf and downloads it when missing; any TTF serves
    # (Ultralytics only uses it to label plots, which are off).
    import matplotlib

    font = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
    (config_dir / "Ultralytics").mkdir(exist_ok=True)
    for target in (config_dir / "Arial.ttf", config_dir / "Ultralytics" / "Arial.ttf"):
        if not target.exists():
            shutil.copyfile(font, target)


def ultralytics_setup(threads: int):
    import torch
    from ultralytics.utils import SETTINGS

    torch.set_num_threads(threads)
    SETTINGS.update({"sync": False, "tensorboard": False, "wandb": False, "mlflow": False,
                     "comet": False, "clearml": False, "dvc": False, "raytune": False})  # fmt: skip
    return SETTINGS


def scaled_model_yaml(model: str, scale: list[float], work: Path) -> Path:
    """``model``'s yaml (a name the package ships or a path) with one compound scale only,
    ``[depth, width, max_channels]``, written into ``work``: Ultralytics then builds that size
    (it takes the first scale when the file name names none). Generated, not copied into the
    repository: the package's yaml files are AGPL-3.0."""
    import yaml
    from ultralytics.nn.tasks import yaml_model_load

    cfg = {k: v for k, v in yaml_model_load(model).items() if k not in ("yaml_file", "scale")}
    depth, width, max_channels = scale
    cfg["scales"] = {"t": [depth, width, int(max_channels)]}
    # no scale letter in the name ("yolo11n-pose" -> "yolo11-pose"), or Ultralytics reads it
    stem = re.sub(r"^(yolo(?:e-)?v?\d+)[nslmx]", r"\1", Path(model).stem)
    path = work / f"{stem}-w{width:g}.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


# --------------------------------------------------------------------------------------------
# Data in YOLO pose format
# --------------------------------------------------------------------------------------------
def yolo_label_lines(anns: list[dict], width: int, height: int) -> list[str]:
    """``0 cx cy w h`` then 17 x ``x y v``, normalised; keypoints with v=0 are ``0 0 0``."""
    lines = []
    for a in anns:
        if a.get("iscrowd", 0):
            continue
        x, y, w, h = a["bbox"]
        vals = [(x + w / 2) / width, (y + h / 2) / height, w / width, h / height]
        kps = np.asarray(a["keypoints"], dtype=np.float64).reshape(-1, 3)
        for kx, ky, v in kps:
            vals += [kx / width, ky / height, int(v)] if v > 0 else [0.0, 0.0, 0]
        lines.append(
            "0 " + " ".join(f"{v:.6f}" if isinstance(v, float) else str(int(v)) for v in vals)
        )
    return lines


def render_train_split(root: Path, seed: int, num_images: int, width: int, height: int,
                       quality: int, log) -> dict:  # fmt: skip
    """Render the training split; reused as is when a finished one with the same recipe exists."""
    recipe = {"generator": synth_data.GENERATOR_VERSION, "seed": seed, "num_images": num_images,
              "width": width, "height": height, "quality": quality}  # fmt: skip
    stamp = root / "train-recipe.json"
    if stamp.exists() and json.loads(stamp.read_text()) == recipe:
        labels = sorted((root / "labels/train").glob("*.txt"))
        recipe["people"] = sum(len(f.read_text().splitlines()) for f in labels)
        log(f"training split reused: {root} ({recipe})")
        return recipe
    from PIL import Image

    for sub in ("images/train", "labels/train"):
        shutil.rmtree(root / sub, ignore_errors=True)
        (root / sub).mkdir(parents=True)
    stamp.unlink(missing_ok=True)
    t0 = time.perf_counter()
    people = 0
    for i in range(num_images):
        pixels, anns = synth_data.render(seed, i, width, height)
        Image.fromarray(pixels).save(root / "images/train" / f"{i:06d}.jpg", quality=quality)
        lines = yolo_label_lines(anns, width, height)
        (root / "labels/train" / f"{i:06d}.txt").write_text("".join(x + "\n" for x in lines))
        people += len(lines)
        if (i + 1) % 1000 == 0:
            log(f"rendered {i + 1}/{num_images} ({time.perf_counter() - t0:.0f} s)")
    recipe["people"] = people
    stamp.write_text(json.dumps({k: v for k, v in recipe.items() if k != "people"}))
    log(f"training split: {num_images} images, {people} people, {time.perf_counter() - t0:.0f} s")
    return recipe


def convert_val_split(root: Path, annotations: Path, images: Path) -> dict[str, int]:
    """Copy a COCO keypoint set into ``images/val`` + ``labels/val``; file stem -> image id."""
    data = json.loads(annotations.read_text())
    by_image: dict[int, list[dict]] = {}
    for a in data["annotations"]:
        by_image.setdefault(a["image_id"], []).append(a)
    for sub in ("images/val", "labels/val"):
        shutil.rmtree(root / sub, ignore_errors=True)
        (root / sub).mkdir(parents=True)
    stems = {}
    for im in data["images"]:
        src = images / im["file_name"]
        shutil.copyfile(src, root / "images/val" / src.name)
        lines = yolo_label_lines(by_image.get(im["id"], []), im["width"], im["height"])
        (root / "labels/val" / f"{src.stem}.txt").write_text("".join(x + "\n" for x in lines))
        stems[src.stem] = im["id"]
    return stems


def write_data_yaml(root: Path) -> Path:
    import yaml

    spec = {
        "path": str(root.resolve()),
        "train": "images/train",
        "val": "images/val",
        "kpt_shape": [len(COCO_NAMES), 3],
        "flip_idx": COCO17.flip_index(),
        "names": {0: "person"},
        "kpt_names": {0: list(COCO_NAMES)},
    }
    path = root / "data.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


# --------------------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------------------
VAL_SETTINGS = {"conf": 0.001, "iou": 0.7, "max_det": 300}  # Ultralytics' `val` defaults


def ultralytics_val(weights: Path, data_yaml: Path, imgsz: int, batch: int, project: Path):
    from ultralytics import YOLO

    m = YOLO(str(weights)).val(
        data=str(data_yaml), split="val", imgsz=imgsz, batch=batch, device="cpu", workers=0,
        plots=False, project=str(project), name="val", exist_ok=True, verbose=False,
        **VAL_SETTINGS,
    )  # fmt: skip
    return {
        "box_map": float(m.box.map), "box_map50": float(m.box.map50),
        "box_map75": float(m.box.map75), "pose_map": float(m.pose.map),
        "pose_map50": float(m.pose.map50), "pose_map75": float(m.pose.map75),
        "speed_ms": {k: round(float(v), 2) for k, v in m.speed.items()},
    }  # fmt: skip


def predict_coco_results(weights: Path, annotations: Path, images: Path, imgsz: int):
    """Ultralytics' predictions on every image of a COCO file, as COCO results; and the time.

    ``bbox`` is xywh, ``keypoints`` x, y and the keypoint's confidence (COCOeval reads only x, y),
    ``score`` the box confidence.
    """
    from ultralytics import YOLO

    model = YOLO(str(weights))
    data = json.loads(annotations.read_text())
    results = []
    t0 = time.perf_counter()
    for im in data["images"]:
        r = model.predict(str(images / im["file_name"]), imgsz=imgsz, device="cpu",
                          verbose=False, **VAL_SETTINGS)[0]  # fmt: skip
        boxes = r.boxes.xyxy.tolist()
        scores = r.boxes.conf.tolist()
        kps = r.keypoints.data.tolist() if r.keypoints is not None else [[]] * len(boxes)
        for (x0, y0, x1, y1), s, k in zip(boxes, scores, kps, strict=True):
            results.append(
                {
                    "image_id": im["id"],
                    "category_id": 1,
                    "bbox": [round(x0, 3), round(y0, 3), round(x1 - x0, 3), round(y1 - y0, 3)],
                    "score": round(float(s), 5),
                    "keypoints": [round(float(v), 3) for row in k for v in row],
                }
            )
    return results, time.perf_counter() - t0


# --------------------------------------------------------------------------------------------
# Outputs
# --------------------------------------------------------------------------------------------
def read_results_csv(path: Path) -> list[dict[str, float]]:
    with open(path, newline="") as f:
        return [{k.strip(): float(v) for k, v in row.items()} for row in csv.DictReader(f)]


def results_rows(columns: dict[str, list] | None) -> list[dict[str, float]]:
    """A checkpoint's ``train_results`` (results.csv as columns) as rows."""
    if not columns:
        return []
    keys = [k.strip() for k in columns]
    cols = list(columns.values())
    return [dict(zip(keys, map(float, vals), strict=True)) for vals in zip(*cols, strict=True)]


def staged(earlier: list[dict[str, float]], rows: list[dict[str, float]]) -> list[dict]:
    """Earlier stage's epochs, then this run's, each with its ``stage`` and a running epoch."""
    out = []
    for stage, part in ((1, earlier), (2 if earlier else 1, rows)):
        for r in part:
            out.append({"stage": stage, "step": len(out) + 1, **r})
    return out


def plot_results(rows: list[dict[str, float]], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ep = np.array([r["step"] for r in rows])
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(9.6, 3.6), dpi=80)
    starts = [b["step"] - 0.5 for a, b in itertools.pairwise(rows) if b["stage"] != a["stage"]]
    for i, key in enumerate(TRAIN_LOSSES):
        colour = f"C{i}"
        ax.plot(ep, [r[f"train/{key}"] for r in rows], color=colour, lw=1.5,
                label=key.removesuffix("_loss"))  # fmt: skip
        if f"val/{key}" in rows[0]:
            ax.plot(ep, [r[f"val/{key}"] for r in rows], color=colour, lw=1, ls="--")
    for axis in (ax, bx):
        for x in starts:  # where a run continued from the previous one's checkpoint
            axis.axvline(x, color="grey", ls=":", lw=1)
    ax.set_yscale("log")
    ax.set_xlabel("epoch" + (" (all stages; dotted: continued)" if starts else ""))
    ax.set_ylabel("loss (solid: train, dashed: val)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=3)
    for key, label in (("metrics/mAP50-95(B)", "box mAP50-95"), ("metrics/mAP50(B)", "box mAP50"),
                       ("metrics/mAP50-95(P)", "pose mAP50-95"),
                       ("metrics/mAP50(P)", "pose mAP50")):  # fmt: skip
        if key in rows[0]:
            bx.plot(ep, [r[key] for r in rows], label=label)
    bx.set_xlabel(ax.get_xlabel())
    bx.set_ylabel("Ultralytics val on the validation set")
    bx.set_ylim(0, 1)
    bx.grid(alpha=0.3)
    bx.legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def ultralytics_license_text() -> str:
    """The AGPL-3.0 text, from the installed ``ultralytics`` distribution."""
    import importlib.metadata as md

    dist = md.distribution("ultralytics")
    for f in dist.files or ():
        if Path(str(f)).name == "LICENSE":
            return Path(dist.locate_file(f)).read_text(encoding="utf-8")
    raise FileNotFoundError("the ultralytics distribution ships no LICENSE file")


LICENCE_NOTE = (
    "These weights were trained by the pytest-kpmodel authors, from scratch on synthetic data,\n"
    "with the Ultralytics YOLO software (https://github.com/ultralytics/ultralytics), which is\n"
    "licensed under the GNU Affero General Public License v3.0. Ultralytics states that models\n"
    "trained with its AGPL-3.0 software are themselves subject to the AGPL-3.0 (unless one holds\n"
    "an Ultralytics Enterprise License). We follow that reading: these weights are licensed under\n"
    "the GNU Affero General Public License, version 3 only (SPDX: AGPL-3.0-only), reproduced\n"
    "below. The pytest-kpmodel plugin itself does not use or include Ultralytics code; it reads\n"
    "this checkpoint with its own loader.\n"
)


def write_license(out: Path) -> None:
    (out / "LICENSE").write_text(LICENCE_NOTE + "\n" + ultralytics_license_text(),
                                 encoding="utf-8")  # fmt: skip


def write_card(out: Path, *, name: str, version: str, weights: Path, imgsz: int, source: str,
               modifications: list[str], claims: dict[str, float], val: Path | None,
               val_images: Path | None) -> Path:  # fmt: skip
    tv = train._toml_value
    lines = [
        "schema = 1",
        "",
        "[model]",
        f"name = {tv(name)}",
        f"version = {tv(version)}",
        'format = "ultralytics"',
        f"weights = {tv(weights.name)}",
        f"sha256 = {tv(train.sha256_file(weights))}",
        'allowlist = "ultralytics"',
        "",
        "[model.kwargs]",
        f"imgsz = {imgsz}",
        "",
        "[provenance]",
        f"source = {tv(source)}",
    ]
    if modifications:
        lines.append("modifications = [")
        lines += [f"    {tv(m)}," for m in modifications]
        lines.append("]")
    lines += ["", "[license]", f"spdx = {tv(SPDX)}", 'file = "LICENSE"']
    lines += ["", "[dependencies]", f"python = {tv(PYTHON)}", f"requires = {tv(REQUIRES)}"]
    if claims:
        lines += ["", "[claims]"]
        lines += [f"{k} = {round(v, 3)!r}" for k, v in claims.items()]
    if val is not None:
        images = val_images if val_images is not None else val.parent / "images"
        lines += ["", "[dataset]", f"annotations = {tv(train._rel(val, out))}",
                  f"images = {tv(train._rel(images, out))}"]  # fmt: skip
    path = out / "kpmodel.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# --------------------------------------------------------------------------------------------
# Resuming an interrupted run
# --------------------------------------------------------------------------------------------
def expected_train_args(args, data_yaml: Path) -> dict[str, Any]:
    """The Ultralytics train args this command would give, to compare with a checkpoint's."""
    want: dict[str, Any] = {
        "model": str(args.init_from) if args.init_from is not None else args.model,
        "data": str(data_yaml), "epochs": args.epochs, "batch": args.batch,
        "imgsz": args.imgsz, "seed": args.seed, "fraction": args.fraction,
    }  # fmt: skip
    for key in ("lr0", "close_mosaic", "warmup_epochs", "nbs", "time"):
        if getattr(args, key) is not None:
            want[key] = getattr(args, key)
    return want


def resume_mismatches(want: dict[str, Any], ckpt_args: dict[str, Any]) -> list[str]:
    """``key: given X, checkpoint Y`` for every argument the checkpoint's run did not use.

    ``lr0`` is left out when the run picked its optimizer itself ('auto' rewrites lr0)."""
    bad = []
    for key, value in want.items():
        if key == "lr0" and str(ckpt_args.get("optimizer", "auto")).lower() != "auto":
            continue
        have = ckpt_args.get(key)
        same = str(have) == str(value) if key in ("model", "data") else have == value
        if not same:
            bad.append(f"{key}: given {value!r}, checkpoint {have!r}")
    return bad


def interrupted_run(run_dir: Path, want: dict[str, Any]) -> dict[str, Any]:
    """The interrupted run's state, checked against this command: its last.pt (kept as
    ``NAME-interrupted-epochN.pt`` beside the run, since resuming overwrites it), the epochs
    it finished and their wall time (Ultralytics' ``results.csv``)."""
    import torch

    last = run_dir / "weights" / "last.pt"
    if not last.exists():
        raise SystemExit(f"--resume: {last} does not exist; nothing to resume")
    # our own training checkpoint, read as Ultralytics reads it when it resumes
    ckpt = torch.load(last, map_location="cpu", weights_only=False)
    if ckpt.get("optimizer") is None or int(ckpt.get("epoch", -1)) < 0:
        raise SystemExit(f"--resume: {last} is a finished run's checkpoint (no optimizer state)")
    bad = resume_mismatches(want, dict(ckpt.get("train_args") or {}))
    if bad:
        raise SystemExit(f"--resume: {last} was trained with other arguments: " + "; ".join(bad))
    done = int(ckpt["epoch"]) + 1
    rows = read_results_csv(run_dir / "results.csv")
    if len(rows) != done:
        raise SystemExit(f"--resume: {run_dir / 'results.csv'} has {len(rows)} epochs, "
                         f"{last} finished {done}")  # fmt: skip
    keep = run_dir.parent / f"{run_dir.name}-interrupted-epoch{done}.pt"
    shutil.copyfile(last, keep)
    return {"path": str(last), "kept": str(keep), "sha256": train.sha256_file(last),
            "epochs_done": done, "seconds_before": rows[-1]["time"],
            "saved": time.strftime("%Y-%m-%d %H:%M", time.localtime(last.stat().st_mtime))}  # fmt: skip


# --------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, required=True, help="model folder to write")
    ap.add_argument("--work", type=Path, required=True,
                    help="scratch folder for the YOLO-format data and Ultralytics' run "
                    "(keep it outside the repository)")  # fmt: skip
    ap.add_argument("--name", default=None, help="model name (default: the folder's name)")
    ap.add_argument("--version", default="1.0.0")
    ap.add_argument("--source", default=None,
                    help="provenance source URL (default https://models.example.org/NAME/VERSION)")  # fmt: skip
    ap.add_argument("--model", default="yolo11n-pose.yaml",
                    help="Ultralytics model yaml: a name the package ships or a path")  # fmt: skip
    ap.add_argument("--scale", type=float, nargs=3, default=None,
                    metavar=("DEPTH", "WIDTH", "MAX_CHANNELS"),
                    help="build --model at this compound scale instead of the one its name "
                    "picks (yolo11n: 0.5 0.25 1024); the yaml is generated into --work")  # fmt: skip
    ap.add_argument("--init-from", type=Path, default=None,
                    help="an Ultralytics checkpoint written by an earlier run of this script to "
                    "continue from, instead of --model's random initialisation")  # fmt: skip
    ap.add_argument("--resume", action="store_true",
                    help="finish this --work's interrupted run (runs/NAME/weights/last.pt) with "
                    "Ultralytics' resume: optimizer, EMA, epoch and LR schedule come from that "
                    "checkpoint. Give the interrupted run's arguments again (they are checked "
                    "against the checkpoint) plus --resume")  # fmt: skip
    ap.add_argument("--note", action="append", default=[],
                    help="a line for TRAINING.md's notes (repeatable)")  # fmt: skip
    ap.add_argument("--seed", type=int, default=0, help="Ultralytics' seed (init, order, augment)")
    ap.add_argument("--data-seed", type=int, default=None,
                    help="seed of the synthetic training set (default: 1000 + --seed)")  # fmt: skip
    ap.add_argument("--num-images", type=int, default=6000, help="synthetic training images")
    ap.add_argument("--width", type=int, default=384)
    ap.add_argument("--height", type=int, default=288)
    ap.add_argument("--quality", type=int, default=85, help="JPEG quality of training images")
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--time", type=float, default=None,
                    help="Ultralytics' time= cap in hours: it re-estimates the epoch count (and "
                    "the LR schedule) after every epoch to fit, and stops when the time is up; "
                    "--epochs is then only the first epoch's schedule. The epochs it ran are "
                    "recorded; rerun them with --epochs N (no --time) for a fixed schedule")  # fmt: skip
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--nbs", type=int, default=None,
                    help="nominal batch: gradients accumulate over nbs/batch batches and weight "
                    "decay scales with batch/nbs (default: Ultralytics' 64)")  # fmt: skip
    ap.add_argument("--imgsz", type=int, default=384)
    ap.add_argument("--optimizer", default="auto", help="Ultralytics optimizer (auto, SGD, AdamW)")
    ap.add_argument("--lr0", type=float, default=None, help="initial lr (default: Ultralytics')")
    ap.add_argument("--warmup-epochs", type=float, default=None,
                    help="warm-up epochs (default: Ultralytics' 3)")  # fmt: skip
    ap.add_argument("--close-mosaic", type=int, default=None,
                    help="last epochs without mosaic (default: Ultralytics' 10)")  # fmt: skip
    ap.add_argument("--fraction", type=float, default=1.0,
                    help="fraction of the training split to use (timing runs)")  # fmt: skip
    ap.add_argument("--no-epoch-val", action="store_true",
                    help="validate only after the last epoch (Ultralytics' val=False)")  # fmt: skip
    ap.add_argument("--val", type=Path, default=None,
                    help="COCO annotations to validate on and measure [claims] with")  # fmt: skip
    ap.add_argument("--val-images", type=Path, default=None)
    ap.add_argument("--threads", type=int, default=1, help="torch.set_num_threads")
    ap.add_argument("--modification", action="append", default=[],
                    help="extra [provenance] modifications line (repeatable)")  # fmt: skip
    return ap


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = build_parser().parse_args(argv)
    work: Path = args.work.resolve()
    out: Path = args.out
    if work == _ROOT or _ROOT in work.parents:
        raise SystemExit(f"--work {work} is inside the repository; put scratch data outside it")
    data_seed = args.data_seed if args.data_seed is not None else 1000 + args.seed
    if data_seed == VAL_SEED:
        raise SystemExit(f"--data-seed {VAL_SEED} is the validation set's seed")
    if args.val is None:
        raise SystemExit("--val is required: Ultralytics needs a validation split")
    offline_environment(work / "config", args.threads)
    out.mkdir(parents=True, exist_ok=True)
    name = args.name or out.resolve().name
    source = args.source or f"https://models.example.org/{name}/{args.version}"
    log = train._Log(out / "train.log", append=args.resume)  # keep the interrupted run's log

    import ultralytics

    settings = ultralytics_setup(args.threads)
    from ultralytics import YOLO
    from ultralytics.utils import LOGGER

    handler = logging.FileHandler(out / "train.log")
    handler.setFormatter(logging.Formatter("[%(asctime)s] %(message)s", "%H:%M:%S"))
    LOGGER.addHandler(handler)
    log(f"machine: {train.machine()}")
    log(f"ultralytics {ultralytics.__version__}; settings sync={settings['sync']}, "
        f"YOLO_OFFLINE={os.environ['YOLO_OFFLINE']}")  # fmt: skip

    data_root = work / "data"
    recipe = render_train_split(data_root, data_seed, args.num_images, args.width, args.height,
                                args.quality, log)  # fmt: skip
    val_images = args.val_images if args.val_images is not None else args.val.parent / "images"
    convert_val_split(data_root, args.val, val_images)
    data_yaml = write_data_yaml(data_root)

    overrides: dict[str, Any] = {}
    if args.lr0 is not None:
        overrides["lr0"] = args.lr0
    if args.close_mosaic is not None:
        overrides["close_mosaic"] = args.close_mosaic
    if args.warmup_epochs is not None:
        overrides["warmup_epochs"] = args.warmup_epochs
    if args.nbs is not None:
        overrides["nbs"] = args.nbs
    if args.time is not None:
        overrides["time"] = args.time
    run_dir = work / "runs" / name
    resumed = None
    if args.resume:
        resumed = interrupted_run(run_dir, expected_train_args(args, data_yaml))
        log(f"resuming {resumed['path']} (sha256 {resumed['sha256']}, saved {resumed['saved']}): "
            f"{resumed['epochs_done']} of {args.epochs} epochs done in "
            f"{resumed['seconds_before'] / 60:.1f} min; copy kept as {resumed['kept']}")  # fmt: skip
    else:
        shutil.rmtree(run_dir, ignore_errors=True)
    if args.init_from is not None:
        # an earlier stage of our own training (its yaml travels in the checkpoint)
        model = YOLO(str(args.init_from))
        log(f"initialised from {args.init_from} (sha256 {train.sha256_file(args.init_from)})")
        earlier = results_rows(model.ckpt.get("train_results"))
        earlier_args = dict(model.ckpt.get("train_args") or {})
    else:
        cfg = args.model
        if args.scale is not None:
            cfg = str(scaled_model_yaml(args.model, args.scale, work))
            log(f"model: {args.model} at scale {args.scale} ({cfg})")
        model = YOLO(cfg)  # from the yaml: randomly initialised, nothing downloaded
        earlier, earlier_args = [], {}
    arch = Path(model.model.yaml.get("yaml_file") or args.model).name
    t0, cpu0 = time.perf_counter(), time.process_time()
    if resumed is not None:
        # every other argument comes from the checkpoint's train_args (checked above)
        model = YOLO(resumed["path"])
        model.train(resume=True, data=str(data_yaml))
    else:
        model.train(
            data=str(data_yaml), epochs=args.epochs, imgsz=args.imgsz, batch=args.batch,
            device="cpu", workers=0, seed=args.seed, deterministic=True,
            project=str(run_dir.parent), name=name, exist_ok=True, plots=False, amp=False,
            val=not args.no_epoch_val, optimizer=args.optimizer, patience=10_000,
            fraction=args.fraction, verbose=True, **overrides,
        )  # fmt: skip
    train_s, cpu_s = time.perf_counter() - t0, time.process_time() - cpu0
    log(f"training took {train_s / 60:.1f} min ({cpu_s / 60:.1f} min of CPU time)")
    rows = read_results_csv(run_dir / "results.csv")
    epochs_run = len(rows)  # = --epochs, unless --time re-estimated the count
    opt = model.trainer.optimizer  # 'auto' picks it from the schedule's length: record the pick
    optimizer = {"name": type(opt).__name__, "lr0": opt.param_groups[0]["initial_lr"],
                 "momentum": opt.param_groups[0].get("betas", (None,))[0]
                 or opt.param_groups[0].get("momentum"),
                 "steps": epochs_run * math.ceil(args.num_images * args.fraction / args.batch)
                 // max(round((args.nbs or 64) / args.batch), 1)}  # fmt: skip
    log(f"optimizer: {optimizer}")

    weights = out / f"{name}.pt"
    shutil.copyfile(run_dir / "weights" / "last.pt", weights)
    all_rows = staged(earlier, rows)
    with open(out / "loss.csv", "w", newline="") as f:
        wr = csv.DictWriter(f, fieldnames=list(all_rows[-1]))
        wr.writeheader()
        wr.writerows([{k: train._sig(v) for k, v in r.items()} for r in all_rows])
    plot_results(all_rows, out / "loss.png", f"{name}: Ultralytics YOLO-pose training")
    write_license(out)

    ul = ultralytics_val(weights, data_yaml, args.imgsz, args.batch, work / "runs")
    log(f"ultralytics val: {ul}")
    results, predict_s = predict_coco_results(weights, args.val, val_images, args.imgsz)
    (work / "coco-results.json").write_text(json.dumps(results))
    coco = train.coco_metrics(args.val, results)
    log(f"pycocotools: {coco}; predict {predict_s:.1f} s, {len(results)} detections")

    n_params = sum(p.numel() for p in model.model.parameters())
    modifications = [
        f"architecture: Ultralytics {arch} with nc=1 (person) and kpt_shape [17, 3], trained "
        "from scratch (no pretrained weights)",
        f"trained for {epochs_run} epochs on {round(args.num_images * args.fraction)} synthetic "
        f"images (seed {data_seed}) at imgsz {args.imgsz} with Ultralytics' default augmentation"
        + (f" (Ultralytics' time cap of {args.time:g} h)" if args.time is not None else ""),
    ]
    if args.init_from is not None:
        modifications[1] = (
            f"continued from an earlier run's checkpoint (sha256 "
            f"{train.sha256_file(args.init_from)[:16]}...) for " + modifications[1].split(" ", 2)[2]
        )
    if resumed is not None:
        modifications.append(
            f"that run was interrupted after epoch {resumed['epochs_done']} of {args.epochs} and "
            "finished with Ultralytics' resume from its last.pt (sha256 "
            f"{resumed['sha256'][:16]}...: optimizer, EMA, epoch and LR schedule restored)"
        )
    modifications += list(args.modification)
    card = write_card(out, name=name, version=args.version, weights=weights, imgsz=args.imgsz,
                      source=source, modifications=modifications, claims={}, val=args.val,
                      val_images=args.val_images)  # fmt: skip
    final = rows[-1]
    summary = {
        "name": name,
        "card": str(card),
        "weights": str(weights),
        "weights_bytes": weights.stat().st_size,
        "parameters": n_params,
        "train_seconds": train_s,
        "cpu_seconds": cpu_s,
        "epochs": epochs_run,
        "final": final,
        "ultralytics_val": ul,
        "coco": coco,
        "predict_seconds": predict_s,
        "detections": len(results),
        "data_seed": data_seed,
        "recipe": recipe,
        "ultralytics_version": ultralytics.__version__,
        "train_args": _train_args(run_dir),
        "optimizer": optimizer,
        "architecture": arch,
        "earlier": {
            "epochs": len(earlier),
            "args": {
                k: earlier_args.get(k)
                for k in (
                    "epochs",
                    "batch",
                    "nbs",
                    "seed",
                    "imgsz",
                    "warmup_epochs",
                    "close_mosaic",
                    "data",
                )
            },
            "final": earlier[-1] if earlier else {},
        },  # fmt: skip
        "init_from": (
            None
            if args.init_from is None
            else {"path": str(args.init_from), "sha256": train.sha256_file(args.init_from)}
        ),
        "resumed": resumed,
    }
    _write_training_md(out, args, argv, summary)
    log(f"done: {json.dumps(summary, default=str)}")
    LOGGER.removeHandler(handler)
    return summary


def _train_args(run_dir: Path) -> dict[str, Any]:
    import yaml

    path = run_dir / "args.yaml"
    return yaml.safe_load(path.read_text()) if path.exists() else {}


def _write_training_md(out: Path, args, argv, summary) -> None:
    cmd = "python tools/train_yolo.py " + shlex.join(sys.argv[1:] if argv is None else argv)
    ul, coco, fl = summary["ultralytics_val"], summary["coco"], summary["final"]
    ta, opt = summary["train_args"], summary["optimizer"]
    init = summary["init_from"]
    how = (
        "Trained from scratch"
        if init is None
        else f"Continued from `{Path(init['path']).name}` (sha256 `{init['sha256'][:16]}...`, an "
        "earlier run of this script, itself trained from scratch"
        + (": see the notes below)" if args.note else ")")
    )
    lines = [
        f"# Training record: {summary['name']}",
        "",
        f"{how} on the CPU by `tools/train_yolo.py` with Ultralytics "
        f"{summary['ultralytics_version']} (PyPI `ultralytics`, AGPL-3.0), on synthetic people "
        "rendered by `tools/synth_data.py` (nothing downloaded, no pretrained weights: the model "
        f"is built from the package's `{summary['architecture']}`).",
        "",
        "## Licence",
        "",
        f"`{SPDX}`. Ultralytics states that models trained with its AGPL-3.0 software are "
        "subject to the AGPL-3.0 too, so these weights are declared AGPL-3.0-only on the card "
        "and in `LICENSE`, unlike the Apache-2.0 torchvision-family models. Ultralytics is a "
        "training tool here only: the plugin reads the checkpoint with its own loader and never "
        "imports or depends on `ultralytics`.",
        "",
        "## Command",
        "",
        "```",
        cmd,
        "```",
        "",
        "run with a Python where `ultralytics` and torch 2.14.1 are installed "
        f"(here `{sys.prefix}`), one torch thread (`--threads`).",
        "",
        f"- seeds: Ultralytics `seed={args.seed}`, `deterministic=True`; synthetic training-set "
        f"seed {summary['data_seed']} ({args.num_images} images of {args.width}x{args.height}, "
        f"{summary['recipe'].get('people', '?')} people; the validation set is seed {VAL_SEED})",
        f"- epochs: {summary['epochs']} x {round(args.num_images * args.fraction)} images"
        + (
            f" (`--time {args.time:g}`: Ultralytics' time cap, which re-estimates the epoch count "
            "and the LR schedule after each epoch to fit the time and stops when it is up; "
            f"`--epochs {args.epochs}` was only the first epoch's schedule)"
            if args.time is not None
            else ""
        )
        + f", batch {args.batch}, imgsz "
        f"{args.imgsz}, optimizer {opt['name']} (`optimizer={args.optimizer}`; lr0 "
        f"{opt['lr0']:g}, lrf {ta.get('lrf')}, momentum {opt['momentum']}, weight decay "
        f"{ta.get('weight_decay')}, {ta.get('warmup_epochs')} warm-up epochs, nominal batch "
        f"{ta.get('nbs')}: about {opt['steps']} optimizer steps), mosaic off for the last "
        f"{ta.get('close_mosaic')} epochs",
        f"- augmentation: Ultralytics' defaults (mosaic {ta.get('mosaic')}, fliplr "
        f"{ta.get('fliplr')} with COCO-17 `flip_idx`, scale {ta.get('scale')}, translate "
        f"{ta.get('translate')}, HSV {ta.get('hsv_h')}/{ta.get('hsv_s')}/{ta.get('hsv_v')})",
        _wall_time_line(summary),
        f"- machine: {train.machine()}",
        f"- parameters: {summary['parameters'] / 1e6:.2f} M; weights file "
        f"{summary['weights_bytes'] / 1e6:.1f} MB (Ultralytics' stripped `last.pt`: EMA weights, "
        "fp16, no optimizer state)",
    ]
    r = summary["resumed"]
    if r is not None:
        lines.append(
            f"- interrupted: the run with this command minus `--resume` died (the machine's "
            f"outage) after epoch {r['epochs_done']} of {args.epochs}; its `last.pt` of that "
            f"epoch (saved {r['saved']}, sha256 `{r['sha256'][:16]}...`) survived, and this "
            "command finished the run from it with Ultralytics' `resume=True`: optimizer state, "
            "EMA, epoch counter and LR schedule come from the checkpoint, every other argument "
            "from its `train_args` (checked against the command). Ultralytics re-seeds its RNGs "
            "and its shuffling generator when it starts, so the resumed epochs' sample order and "
            "augmentation draws are not those an uninterrupted run would have made; "
            "`results.csv`'s `time` column restarts at the resumption"
        )
    e = summary["earlier"]
    if e["epochs"]:
        ea, ef = e["args"], e["final"]
        lines.append(
            f"- earlier stage (from the starting checkpoint's own record): {e['epochs']} epochs, "
            f"batch {ea['batch']}, nominal batch {ea['nbs']}, seed {ea['seed']}, imgsz "
            f"{ea['imgsz']}, {ea['warmup_epochs']} warm-up epochs, mosaic off for the last "
            f"{ea['close_mosaic']}; after it, Ultralytics val: box mAP50-95 "
            f"{ef.get('metrics/mAP50-95(B)', float('nan')):.3f}, pose mAP50-95 "
            f"{ef.get('metrics/mAP50-95(P)', float('nan')):.3f}"
        )
    lines += [
        "",
        "## Final losses (last epoch)",
        "",
        "| | box | pose | kobj | cls | dfl |",
        "|---|---|---|---|---|---|",
        "| train | " + " | ".join(f"{fl[f'train/{k}']:.4f}" for k in TRAIN_LOSSES) + " |",
    ]
    if "val/box_loss" in fl:
        lines.append("| val | " + " | ".join(f"{fl[f'val/{k}']:.4f}" for k in TRAIN_LOSSES) + " |")
    lines += [
        "",
        "![loss curve](loss.png)",
        "",
        "Per-epoch values (Ultralytics' `results.csv`, with the `stage` each epoch belongs to and "
        "a running `step`): `loss.csv`. The per-epoch validation runs "
        "on the validation set below for monitoring only; the shipped weights are the last "
        "epoch's, not the best on it.",
        "",
        "## Validation metrics",
        "",
        f"On `{train._rel(args.val, out)}`, on the CPU, at Ultralytics' `val` settings (imgsz "
        f"{args.imgsz}, conf {VAL_SETTINGS['conf']}, iou {VAL_SETTINGS['iou']}, max_det "
        f"{VAL_SETTINGS['max_det']}).",
        "",
        "| measured by | box AP | box AP50 | box AP75 | kp AP | kp AP50 | kp AP75 |",
        "|---|---|---|---|---|---|---|",
        "| Ultralytics `val` (mAP50-95(B), (P)) | "
        + " | ".join(
            f"{ul[k]:.3f}"
            for k in ("box_map", "box_map50", "box_map75", "pose_map", "pose_map50", "pose_map75")
        )  # fmt: skip
        + " |",
        "| pycocotools COCOeval | "
        + " | ".join(
            f"{coco[k]:.3f}"
            for k in ("box_ap", "box_ap50", "box_ap75", "kp_ap", "kp_ap50", "kp_ap75")
        )  # fmt: skip
        + " |",
        "",
        f"pycocotools scores {summary['detections']} detections made by Ultralytics' `predict` "
        "(boxes as xywh, keypoints with the keypoint confidence as v, score = box confidence); "
        f"predicting the whole set took {summary['predict_seconds']:.1f} s.",
        "",
        "Why the two differ: Ultralytics computes OKS with the object's area taken as 0.53 x its "
        "box area, matches at each threshold with its own greedy matcher over all detections "
        "(`max_det` 300) and interpolates precision at 101 points over a continuous recall "
        "curve; COCOeval uses the annotation's `area` (here the count of visible pixels, smaller "
        "than 0.53 x the box for most people, which makes it stricter on keypoints), keeps the "
        "best 20 detections per image for keypoints (100 for boxes), ignores ground truth "
        "without keypoints in the keypoint evaluation and splits the result by area range.",
        "",
    ]
    if args.note:
        lines += ["## Notes", ""] + [f"- {n}" for n in args.note] + [""]
    (out / "TRAINING.md").write_text("\n".join(lines), encoding="utf-8")


def _wall_time_line(summary) -> str:
    train_min, cpu_min = summary["train_seconds"] / 60, summary["cpu_seconds"] / 60
    r = summary["resumed"]
    if r is None:
        return (f"- wall time (`model.train`, per-epoch validation included): {train_min:.1f} min "
                f"({cpu_min:.1f} min of CPU time: the 2 cores were shared with other jobs)")  # fmt: skip
    before = r["seconds_before"] / 60
    return (
        f"- wall time (`model.train`, per-epoch validation included): {before + train_min:.1f} "
        f"min: {before:.1f} min for epochs 1-{r['epochs_done']} before the interruption "
        f"(Ultralytics' `results.csv`), {train_min:.1f} min for the rest after resuming "
        f"({cpu_min:.1f} min of CPU time: the 2 cores were shared with other jobs)"
    )


if __name__ == "__main__":
    main()
    raise SystemExit(0)
