"""Train the compact Keypoint R-CNN reference models from scratch on the CPU, on synthetic people.

Training images come from :func:`synth_data.render` at training time (nothing is downloaded,
nothing is written but the model folder). The script writes into ``--out``:

- ``<name>.safetensors``: the state dict (BN running statistics included), contiguous fp32,
- ``kpmodel.toml``: the model card (kwargs, sha256, license, provenance, dependencies, claims
  measured on ``--val`` with pycocotools, dataset),
- ``LICENSE`` (Apache-2.0), ``loss.csv``, ``loss.png`` and ``TRAINING.md``.

Examples::

    python tools/train.py --out example_suite/models/kp-tiny-base --name kp-tiny-base \\
        --iterations 1800 --batch-size 4 --num-images 8000 --seed 0 \\
        --val example_suite/data/val/annotations.json

    python tools/train.py --out example_suite/models/kp-tiny-mod --name kp-tiny-mod \\
        --init-from example_suite/models/kp-tiny-base/kpmodel.toml \\
        --base example_suite/models/kp-tiny-base/kpmodel.toml \\
        --keypoint-head-depth 3 --low-light 0.5 --iterations 700 --lr 5e-4 --seed 1 \\
        --val example_suite/data/val/annotations.json
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import math
import os
import platform
import shlex
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

from pytest_kpmodel.keypoints import COCO17  # noqa: E402

ARCHITECTURE = "pytest_kpmodel.zoo:keypointrcnn_compact"
LOSS_KEYS = ("loss_classifier", "loss_box_reg", "loss_keypoint", "loss_objectness",
             "loss_rpn_box_reg")  # fmt: skip
REQUIRES = ["torch>=2.4,<3", "torchvision>=0.19,<1"]
PYTHON = ">=3.10"


# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------
def low_light(img, gen):
    """Darken a CHW [0, 1] image like a dim scene shot at high gain: gamma, gain, tint, noise."""
    import torch

    def u(a, b):
        return a + (b - a) * float(torch.rand((), generator=gen))

    img = img.clamp(0, 1) ** u(1.2, 2.2)
    tint = torch.tensor([u(0.8, 1.0), u(0.85, 1.0), u(0.9, 1.15)])
    img = img * u(0.12, 0.5) * tint[:, None, None]
    img = img + torch.randn(img.shape, generator=gen) * u(0.005, 0.035)
    return img.clamp(0, 1)


def hflip(img, boxes, keypoints, flip_index):
    """Mirror an image and its targets; left and right keypoints swap names."""
    w = img.shape[-1]
    img = img.flip(-1)
    boxes = boxes[:, [2, 1, 0, 3]] * boxes.new_tensor([-1, 1, -1, 1]) + boxes.new_tensor(
        [w, 0, w, 0]
    )
    kp = keypoints[:, flip_index].clone()
    kp[..., 0] = w - kp[..., 0]
    kp[kp[..., 2] == 0] = 0
    return img, boxes, kp


def targets_from_anns(anns, num_keypoints=17):
    import torch

    boxes = torch.zeros((len(anns), 4), dtype=torch.float32)
    kps = torch.zeros((len(anns), num_keypoints, 3), dtype=torch.float32)
    for i, a in enumerate(anns):
        x, y, w, h = a["bbox"]
        boxes[i] = torch.tensor([x, y, x + w, y + h], dtype=torch.float32)
        kps[i] = torch.tensor(a["keypoints"], dtype=torch.float32).view(num_keypoints, 3)
    return boxes, kps


class SynthTrainSet:
    """A map-style dataset: item ``i`` is synthetic image ``i % num_images`` of ``seed``,
    augmented (horizontal flip with left/right swap, optional low-light) with torch's RNG."""

    def __init__(self, seed, num_images, width, height, flip_p=0.5, low_light_p=0.0):
        self.seed, self.num_images = seed, num_images
        self.width, self.height = width, height
        self.flip_p, self.low_light_p = flip_p, low_light_p
        self.flip_index = COCO17.flip_index()

    def __len__(self):
        return self.num_images

    def __getitem__(self, i):
        import torch

        pixels, anns = synth_data.render(self.seed, i % self.num_images, self.width, self.height)
        img = (
            torch.from_numpy(np.ascontiguousarray(pixels).copy()).permute(2, 0, 1).float().div_(255)
        )
        boxes, kps = targets_from_anns(anns)
        gen = torch.Generator().manual_seed(int(torch.randint(0, 2**62, ())))
        if float(torch.rand((), generator=gen)) < self.flip_p:
            img, boxes, kps = hflip(img, boxes, kps, self.flip_index)
        if self.low_light_p > 0 and float(torch.rand((), generator=gen)) < self.low_light_p:
            img = low_light(img, gen)
        labels = torch.ones(len(anns), dtype=torch.int64)
        return img, {"boxes": boxes, "labels": labels, "keypoints": kps}


def _collate(batch):
    return tuple(zip(*batch, strict=True))


def _worker_init(_):
    import torch

    torch.set_num_threads(1)


class _Forever:
    """An endless, seeded sampler over ``range(n)``: a fresh permutation per pass."""

    def __init__(self, n, seed):
        self.n, self.seed = n, seed

    def __iter__(self):
        rng = np.random.default_rng(self.seed)
        while True:
            yield from rng.permutation(self.n).tolist()


# --------------------------------------------------------------------------------------------
# Model
# --------------------------------------------------------------------------------------------
def build_model(kwargs: dict[str, Any]):
    from pytest_kpmodel.zoo import keypointrcnn_compact

    return keypointrcnn_compact(**kwargs)


def _card_weights(path: Path) -> tuple[Path, dict[str, Any]]:
    """(weights file, builder kwargs) of a card or a bare safetensors file."""
    if path.is_dir() or path.suffix == ".toml":
        from pytest_kpmodel.card import load_card

        card = load_card(path)
        return Path(card.model.weights), dict(card.model.kwargs)
    return path, {}


def load_init(model, path: Path) -> dict[str, list[str]]:
    """Copy every tensor whose name and shape match; report what was left fresh or dropped."""
    from safetensors.torch import load_file

    weights, _ = _card_weights(path)
    src = load_file(str(weights))
    dst = model.state_dict()
    loaded, reinit, dropped = [], [], []
    for k, v in dst.items():
        if k in src and tuple(src[k].shape) == tuple(v.shape):
            dst[k] = src[k]
            loaded.append(k)
        else:
            reinit.append(k)
    dropped = sorted(set(src) - set(dst))
    model.load_state_dict(dst)
    return {"loaded": loaded, "reinitialised": reinit, "dropped": dropped}


def save_weights(model, path: Path) -> None:
    from safetensors.torch import save_file

    sd = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
    save_file(sd, str(path), metadata={"format": "pt", "architecture": ARCHITECTURE})


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# --------------------------------------------------------------------------------------------
# Evaluation (pycocotools, directly)
# --------------------------------------------------------------------------------------------
def predict_coco(
    model,
    annotations: Path,
    images: Path | None = None,
    threads: int | None = None,
    max_images=None,
    transform=None,
):
    """Run the model on every image of a COCO file; COCO results and the wall time.

    ``transform(image, image_id)``, when given, changes each decoded image before the model sees it.
    """
    import torch
    from PIL import Image

    images = Path(images) if images is not None else Path(annotations).parent / "images"
    data = json.loads(Path(annotations).read_text())
    if threads is not None:
        torch.set_num_threads(threads)
    model.eval()
    results = []
    t0 = time.perf_counter()
    with torch.inference_mode():
        for im in data["images"][:max_images]:
            pil = Image.open(images / im["file_name"]).convert("RGB")
            x = torch.from_numpy(np.asarray(pil).copy()).permute(2, 0, 1).float().div_(255)
            if transform is not None:
                x = transform(x, im["id"])
            out = model([x])[0]
            boxes = out["boxes"].tolist()
            scores = out["scores"].tolist()
            kps = out["keypoints"]
            kscores = out.get("keypoints_scores")
            for j, (b, s) in enumerate(zip(boxes, scores, strict=True)):
                k = kps[j].clone()
                if kscores is not None:
                    k[:, 2] = kscores[j]
                results.append(
                    {
                        "image_id": im["id"],
                        "category_id": 1,
                        "bbox": [b[0], b[1], b[2] - b[0], b[3] - b[1]],
                        "score": float(s),
                        "keypoints": [round(float(v), 3) for v in k.reshape(-1).tolist()],
                    }
                )
    return results, time.perf_counter() - t0


def coco_metrics(annotations: Path, results: list[dict], image_ids=None) -> dict[str, float]:
    """Box and keypoint AP/AP50/AP75 by pycocotools' COCOeval."""
    import contextlib
    import io

    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    out = {}
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(annotations))
        for iou_type, prefix in (("bbox", "box"), ("keypoints", "kp")):
            if not results:
                out.update({f"{prefix}_ap": 0.0, f"{prefix}_ap50": 0.0, f"{prefix}_ap75": 0.0})
                continue
            dt = gt.loadRes([dict(r) for r in results])
            ev = COCOeval(gt, dt, iou_type)
            if image_ids is not None:
                ev.params.imgIds = list(image_ids)
            ev.evaluate()
            ev.accumulate()
            ev.summarize()
            s = [max(float(v), 0.0) for v in ev.stats]
            out.update({f"{prefix}_ap": s[0], f"{prefix}_ap50": s[1], f"{prefix}_ap75": s[2]})
            out[f"{prefix}_ar"] = s[8] if iou_type == "bbox" else s[5]
    return out


# --------------------------------------------------------------------------------------------
# Card, logs
# --------------------------------------------------------------------------------------------
def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {v!r} to TOML")


def write_card(
    out: Path,
    *,
    name: str,
    version: str,
    weights: Path,
    kwargs: dict[str, Any],
    source: str,
    base: Path | None,
    modifications: list[str],
    claims: dict[str, float],
    val: Path | None,
    val_images: Path | None,
) -> Path:
    lines = card_model_lines(name, version, "safetensors", weights, ARCHITECTURE)
    lines += [f"{k} = {_toml_value(v)}" for k, v in kwargs.items()]
    lines += ["", "[provenance]", f"source = {_toml_value(source)}"]
    if base is not None:
        lines.append(f"base = {_toml_value(_rel(base, out))}")
    if modifications:
        lines.append("modifications = [")
        lines += [f"    {_toml_value(m)}," for m in modifications]
        lines.append("]")
    lines += card_license_lines(PYTHON, REQUIRES)
    if claims:
        lines += ["", "[claims]"]
        lines += [f"{k} = {round(v, 3)!r}" for k, v in claims.items()]
    return write_card_file(out, lines + card_dataset_lines(out, val, val_images))


# The card's parts that every training script writes the same way.
def card_model_lines(name: str, version: str, fmt: str, weights: Path, architecture: str):
    """``[model]`` up to the ``[model.kwargs]`` header (the script adds the kwargs)."""
    return [
        "schema = 1",
        "",
        "[model]",
        f"name = {_toml_value(name)}",
        f"version = {_toml_value(version)}",
        f"format = {_toml_value(fmt)}",
        f"weights = {_toml_value(weights.name)}",
        f"sha256 = {_toml_value(sha256_file(weights))}",
        f"architecture = {_toml_value(architecture)}",
        "",
        "[model.kwargs]",
    ]


def card_license_lines(python: str, requires: list[str]) -> list[str]:
    """``[license]`` (Apache-2.0, the LICENSE file beside the card) and ``[dependencies]``."""
    return ["", "[license]", 'spdx = "Apache-2.0"', 'file = "LICENSE"',
            "", "[dependencies]", f"python = {_toml_value(python)}",
            f"requires = {_toml_value(requires)}"]  # fmt: skip


def card_dataset_lines(out: Path, val: Path | None, val_images: Path | None) -> list[str]:
    """``[dataset]``: the validation set the card's claims were measured on, relative paths."""
    if val is None:
        return []
    images = val_images if val_images is not None else val.parent / "images"
    return ["", "[dataset]", f"annotations = {_toml_value(_rel(val, out))}",
            f"images = {_toml_value(_rel(images, out))}"]  # fmt: skip


def write_card_file(out: Path, lines: list[str]) -> Path:
    path = out / "kpmodel.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _rel(p: Path, start: Path) -> str:
    return Path(os.path.relpath(Path(p).resolve(), Path(start).resolve())).as_posix()


def apache_license_text() -> str:
    """The Apache-2.0 text, from the installed ``packaging`` distribution (a dependency)."""
    import importlib.metadata as md

    try:
        dist = md.distribution("packaging")
        for f in dist.files or ():
            if str(f).endswith("LICENSE.APACHE"):
                return Path(dist.locate_file(f)).read_text(encoding="utf-8")
    except (md.PackageNotFoundError, OSError):
        pass
    return (
        "                                 Apache License\n"
        "                           Version 2.0, January 2004\n"
        "                        http://www.apache.org/licenses/\n\n"
        "See http://www.apache.org/licenses/LICENSE-2.0 for the full terms.\n"
    )


def write_license(out: Path) -> None:
    (out / "LICENSE").write_text(
        "The model weights in this folder are Copyright the pytest-kpmodel authors and are\n"
        "licensed under the Apache License, Version 2.0 (SPDX: Apache-2.0), reproduced below.\n\n"
        + apache_license_text(),
        encoding="utf-8",
    )


def plot_losses(
    rows: list[dict], path: Path, title: str, loss_keys: tuple[str, ...] = LOSS_KEYS
) -> None:
    """The total and each loss term (moving mean, log scale). Rows of a continued run carry
    ``stage`` and a running ``step``: a dotted line marks where the later stage starts."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    it = np.array([r.get("step", r["iteration"]) for r in rows])
    win = max(1, len(rows) // 50)
    fig, ax = plt.subplots(figsize=(6.4, 3.6), dpi=80)
    for a, b in zip(rows, rows[1:], strict=False):
        if a.get("stage") != b.get("stage"):  # where this run continued from the earlier one
            ax.axvline(b["step"] - 0.5, color="grey", ls=":", lw=1)
    for key in ("loss", *loss_keys):
        y = np.array([r[key] for r in rows], dtype=np.float64)
        ys = np.convolve(y, np.ones(win) / win, mode="valid")
        ax.plot(it[win - 1 :], ys, label="total" if key == "loss" else key.removeprefix("loss_"),
                lw=2 if key == "loss" else 1)  # fmt: skip
    ax.set_yscale("log")
    ax.set_xlabel("iteration" + (" (both stages; dotted: continued)" if "stage" in rows[0]
                                 and rows[0]["stage"] != rows[-1]["stage"] else ""))  # fmt: skip
    ax.set_ylabel(f"loss (moving mean of {win})")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import torch
    import torchvision

    return (
        f"{cpu}, {os.cpu_count()} logical CPUs (torch threads: {torch.get_num_threads()}), "
        f"no GPU; {platform.system()} {platform.release()}; Python {platform.python_version()}, "
        f"torch {torch.__version__}, torchvision {torchvision.__version__}"
    )


# --------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------
def add_run_arguments(ap: argparse.ArgumentParser) -> None:
    """The model folder, its name, version and source, and the seeds (every training script)."""
    ap.add_argument("--out", type=Path, required=True, help="model folder to write")
    ap.add_argument("--name", default=None, help="model name (default: the folder's name)")
    ap.add_argument("--version", default="1.0.0")
    ap.add_argument("--source", default=None,
                    help="provenance source URL (default https://models.example.org/NAME/VERSION)")  # fmt: skip
    ap.add_argument("--seed", type=int, default=0, help="seed for weights init, data and order")
    ap.add_argument("--data-seed", type=int, default=None,
                    help="seed of the synthetic training set (default: 1000 + --seed)")  # fmt: skip


def add_schedule_tail_arguments(ap: argparse.ArgumentParser) -> None:
    """The cosine floor, gradient clipping and the two augmentations (the R-CNN scripts)."""
    ap.add_argument("--final-lr-frac", type=float, default=0.02, help="cosine floor / lr")
    ap.add_argument("--clip-grad", type=float, default=10.0)
    ap.add_argument("--hflip", type=float, default=0.5, help="horizontal flip probability")
    ap.add_argument("--low-light", type=float, default=0.0,
                    help="probability of the low-light augmentation")  # fmt: skip


def add_loop_arguments(ap: argparse.ArgumentParser, *, threads: int, eval_images: int) -> None:
    """Data-loader workers, torch threads, logging and the periodic evaluation."""
    ap.add_argument("--workers", type=int, default=1, help="DataLoader worker processes")
    ap.add_argument("--threads", type=int, default=threads, help="torch.set_num_threads")
    ap.add_argument("--log-every", type=int, default=20)
    ap.add_argument("--eval-every", type=int, default=0,
                    help="evaluate on the first --eval-images of --val every N iterations")  # fmt: skip
    ap.add_argument("--eval-images", type=int, default=eval_images)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_run_arguments(ap)
    ap.add_argument("--iterations", type=int, default=1800)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--num-images", type=int, default=8000, help="synthetic training images")
    ap.add_argument("--width", type=int, default=384)
    ap.add_argument("--height", type=int, default=288)
    ap.add_argument("--optimizer", choices=("adamw", "sgd"), default="adamw")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--weight-decay", type=float, default=1e-4)
    ap.add_argument("--warmup", type=int, default=100, help="linear warm-up iterations")
    add_schedule_tail_arguments(ap)
    ap.add_argument("--init-from", type=Path, default=None,
                    help="card or safetensors to start from (matching name and shape)")  # fmt: skip
    ap.add_argument("--base", type=Path, default=None, help="base card for [provenance] base")
    ap.add_argument("--modification", action="append", default=[],
                    help="extra [provenance] modifications line (repeatable)")  # fmt: skip
    ap.add_argument("--val", type=Path, default=None,
                    help="COCO annotations to measure [claims] on after training")  # fmt: skip
    ap.add_argument("--val-images", type=Path, default=None)
    add_loop_arguments(ap, threads=2, eval_images=50)
    m = ap.add_argument_group("model kwargs (pytest_kpmodel.zoo:keypointrcnn_compact)")
    m.add_argument("--backbone", default="resnet18_half")
    m.add_argument("--fpn-channels", type=int, default=32)
    m.add_argument("--box-head-dim", type=int, default=256)
    m.add_argument("--keypoint-head-depth", type=int, default=4)
    m.add_argument("--keypoint-head-channels", type=int, default=64)
    m.add_argument("--min-size", type=int, default=288)
    m.add_argument("--max-size", type=int, default=384)
    m.add_argument("--anchor-sizes", type=int, nargs="+", default=[16, 32, 64, 128, 256])
    m.add_argument("--rpn-pre-nms-top-n-train", type=int, default=600)
    m.add_argument("--rpn-post-nms-top-n-train", type=int, default=300)
    m.add_argument("--rpn-pre-nms-top-n-test", type=int, default=300)
    m.add_argument("--rpn-post-nms-top-n-test", type=int, default=100)
    m.add_argument("--box-batch-size-per-image", type=int, default=64)
    m.add_argument("--box-score-thresh", type=float, default=0.05)
    m.add_argument("--box-detections-per-img", type=int, default=20)
    return ap


def model_kwargs(args) -> dict[str, Any]:
    return {
        "backbone": args.backbone,
        "num_classes": 2,
        "num_keypoints": 17,
        "fpn_channels": args.fpn_channels,
        "box_head_dim": args.box_head_dim,
        "keypoint_head_depth": args.keypoint_head_depth,
        "keypoint_head_channels": args.keypoint_head_channels,
        "min_size": args.min_size,
        "max_size": args.max_size,
        "anchor_sizes": list(args.anchor_sizes),
        "rpn_pre_nms_top_n_train": args.rpn_pre_nms_top_n_train,
        "rpn_post_nms_top_n_train": args.rpn_post_nms_top_n_train,
        "rpn_pre_nms_top_n_test": args.rpn_pre_nms_top_n_test,
        "rpn_post_nms_top_n_test": args.rpn_post_nms_top_n_test,
        "box_batch_size_per_image": args.box_batch_size_per_image,
        "box_score_thresh": args.box_score_thresh,
        "box_detections_per_img": args.box_detections_per_img,
    }


def lr_factor(it: int, total: int, warmup: int, floor: float) -> float:
    if it < warmup:
        return 0.001 + (1 - 0.001) * it / max(1, warmup)
    t = (it - warmup) / max(1, total - warmup)
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(1.0, t)))


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Train, save, measure and write the card; returns a summary. Restores torch's thread count."""
    return with_threads(_train, build_parser().parse_args(argv), argv)


def with_threads(train, args, argv) -> dict[str, Any]:
    """``train(args, argv)`` with ``--threads`` torch threads, restoring the count after."""
    import torch

    threads_before = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    try:
        return train(args, argv)
    finally:
        torch.set_num_threads(threads_before)


def run_folder(args) -> tuple[Path, str, str, int]:
    """The model folder (created), the model's name, its provenance source, the data seed."""
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    name = args.name or out.resolve().name
    source = args.source or f"https://models.example.org/{name}/{args.version}"
    data_seed = args.data_seed if args.data_seed is not None else 1000 + args.seed
    return out, name, source, data_seed


def endless_loader(dataset, args, collate_fn, worker_init_fn):
    """Batches of ``dataset`` in a seeded order that never ends (``_Forever``)."""
    import torch

    return torch.utils.data.DataLoader(
        dataset,
        batch_size=args.batch_size,
        sampler=_Forever(args.num_images, args.seed),
        num_workers=args.workers,
        collate_fn=collate_fn,
        worker_init_fn=worker_init_fn if args.workers else None,
        generator=torch.Generator().manual_seed(args.seed),
        persistent_workers=args.workers > 0,
        prefetch_factor=4 if args.workers else None,
    )


def optimise(model, opt, sched, losses: dict, it: int, clip_grad: float):
    """One step on the summed ``losses`` (a non-finite loss stops the run); returns the loss."""
    import torch

    loss = sum(losses.values())
    if not torch.isfinite(loss):
        raise FloatingPointError(f"loss is {loss.item()} at iteration {it}: {losses}")
    opt.zero_grad(set_to_none=True)
    loss.backward()
    if clip_grad > 0:
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip_grad)
    opt.step()
    sched.step()
    return loss


def record_step(rows, log, args, it: int, lr: float, loss, losses, loss_keys, t0: float) -> None:
    """The iteration's row (lr, total and each loss, elapsed seconds); every ``--log-every``
    iterations (and the first and last) a log line with the mean of the recent rows."""
    row = {"iteration": it + 1, "lr": lr, "loss": float(loss.detach())}
    row.update({k: float(losses[k].detach()) for k in loss_keys})
    row["elapsed_s"] = round(time.perf_counter() - t0, 2)
    rows.append(row)
    if (it + 1) % args.log_every == 0 or it == 0 or it + 1 == args.iterations:
        recent = rows[-args.log_every :]
        mean = {k: np.mean([r[k] for r in recent]) for k in ("loss", *loss_keys)}
        log(
            f"it {it + 1}/{args.iterations} lr {row['lr']:.2e} "
            + " ".join(f"{k.removeprefix('loss_')} {v:.4f}" for k, v in mean.items())
            + f" ({row['elapsed_s']:.0f} s)"
        )


def write_loss_csv(path: Path, rows: list[dict]) -> None:
    with open(path, "w", newline="") as f:
        wr = csv.DictWriter(f, fieldnames=list(rows[-1]))
        wr.writeheader()
        wr.writerows([{k: _sig(v) for k, v in r.items()} for r in rows])


def summary_head(name: str, card: Path, weights: Path, parameters: int, train_s: float):
    """The first keys of the summary ``main`` returns (and TRAINING.md reads)."""
    return {"name": name, "card": str(card), "weights": str(weights),
            "weights_bytes": weights.stat().st_size, "parameters": parameters,
            "train_seconds": train_s}  # fmt: skip


def final_losses(rows: list[dict], loss_keys: tuple[str, ...]) -> dict[str, float]:
    """Mean of the last 50 iterations, total and each term."""
    last = rows[-min(len(rows), 50) :]
    return {k: float(np.mean([r[k] for r in last])) for k in ("loss", *loss_keys)}


def _train(args, argv) -> dict[str, Any]:
    import torch

    torch.manual_seed(args.seed)
    out, name, source, data_seed = run_folder(args)
    kwargs = model_kwargs(args)
    log = _Log(out / "train.log")
    log(f"machine: {machine()}")
    log(f"kwargs: {kwargs}")

    model = build_model(kwargs)
    init_report = None
    base_kwargs: dict[str, Any] = {}
    if args.init_from is not None:
        init_report = load_init(model, args.init_from)
        _, base_kwargs = _card_weights(args.init_from)
        log(
            f"init from {args.init_from}: {len(init_report['loaded'])} tensors loaded, "
            f"re-initialised {init_report['reinitialised']}, dropped {init_report['dropped']}"
        )
    n_params = sum(p.numel() for p in model.parameters())
    log(f"parameters: {n_params / 1e6:.2f} M")

    decay, no_decay = [], []
    for _, p in model.named_parameters():
        (no_decay if p.ndim <= 1 else decay).append(p)
    groups = [{"params": decay, "weight_decay": args.weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]  # fmt: skip
    if args.optimizer == "adamw":
        opt = torch.optim.AdamW(groups, lr=args.lr)
    else:
        opt = torch.optim.SGD(groups, lr=args.lr, momentum=0.9)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda it: lr_factor(it, args.iterations, args.warmup, args.final_lr_frac)
    )

    dataset = SynthTrainSet(data_seed, args.num_images, args.width, args.height,
                            flip_p=args.hflip, low_light_p=args.low_light)  # fmt: skip
    loader = endless_loader(dataset, args, _collate, _worker_init)

    rows: list[dict] = []
    model.train()
    t0 = time.perf_counter()
    batches = iter(loader)
    for it in range(args.iterations):
        images, targets = next(batches)
        losses = model(list(images), list(targets))
        loss = optimise(model, opt, sched, losses, it, args.clip_grad)
        record_step(rows, log, args, it, opt.param_groups[0]["lr"], loss, losses, LOSS_KEYS, t0)
        if args.eval_every and args.val is not None and (it + 1) % args.eval_every == 0:
            t_eval = time.perf_counter()
            res, _ = predict_coco(model, args.val, args.val_images, args.threads,
                                  args.eval_images)  # fmt: skip
            ids = [im["id"] for im in json.loads(Path(args.val).read_text())["images"]]
            met = coco_metrics(args.val, res, ids[: args.eval_images])
            log(f"eval at {it + 1}: " + " ".join(f"{k} {v:.3f}" for k, v in met.items()))
            model.train()
            t0 += time.perf_counter() - t_eval  # keep evaluation out of the training time
    train_s = time.perf_counter() - t0
    del batches, loader

    weights = out / f"{name}.safetensors"
    save_weights(model, weights)
    write_loss_csv(out / "loss.csv", rows)
    plot_losses(rows, out / "loss.png", f"{name}: training loss")
    write_license(out)

    claims: dict[str, float] = {}
    predict_s = None
    metrics: dict[str, float] = {}
    if args.val is not None:
        results, predict_s = predict_coco(model, args.val, args.val_images, args.threads)
        metrics = coco_metrics(args.val, results)
        claims = {k: metrics[k] for k in ("box_ap", "box_ap50", "box_ap75", "kp_ap", "kp_ap50",
                                          "kp_ap75")}  # fmt: skip
        log(f"val metrics: {metrics}; predict {predict_s:.1f} s, {len(results)} detections")

    modifications = list(args.modification)
    if args.init_from is not None:
        modifications = _auto_modifications(args, kwargs, base_kwargs, init_report) + modifications
    card = write_card(
        out, name=name, version=args.version, weights=weights, kwargs=kwargs, source=source,
        base=args.base, modifications=modifications, claims=claims, val=args.val,
        val_images=args.val_images,
    )  # fmt: skip
    final = final_losses(rows, LOSS_KEYS)
    summary = {
        **summary_head(name, card, weights, n_params, train_s),
        "final_losses": final,
        "metrics": metrics,
        "predict_seconds": predict_s,
        "data_seed": data_seed,
        "modifications": modifications,
    }
    _write_training_md(out, args, argv, summary, kwargs)
    log(f"done: {json.dumps(summary, default=str)}")
    return summary


def _auto_modifications(args, kwargs, base_kwargs, report) -> list[str]:
    mods = []
    for k, v in kwargs.items():
        if k in base_kwargs and base_kwargs[k] != v:
            if k == "keypoint_head_depth":
                mods.append(f"keypoint head: {v} convs instead of {base_kwargs[k]}")
            else:
                mods.append(f"{k}: {v} instead of {base_kwargs[k]}")
    if report and report["dropped"]:
        mods.append("removed layers: " + ", ".join(_layer_names(report["dropped"])))
    if report and report["reinitialised"]:
        mods.append("re-initialised layers: " + ", ".join(_layer_names(report["reinitialised"])))
    aug = "horizontal flip"
    if args.low_light > 0:
        aug += f" and low-light augmentation (p={args.low_light:g})"
    mods.append(
        f"fine-tuned from the base for {args.iterations} iterations "
        f"(batch {args.batch_size}, {args.optimizer} lr {args.lr:g}) with {aug}"
    )
    return mods


def _sig(v: Any) -> Any:
    """Five significant digits: enough for a loss curve, a fraction of the bytes."""
    return float(f"{v:.5g}") if isinstance(v, float) else v


def _layer_names(keys: list[str]) -> list[str]:
    seen = []
    for k in keys:
        layer = k.rsplit(".", 1)[0]
        if layer not in seen:
            seen.append(layer)
    return seen


def _write_training_md(out: Path, args, argv, summary, kwargs) -> None:
    cmd = "python tools/train.py " + shlex.join(sys.argv[1:] if argv is None else argv)
    m = summary["metrics"]
    fl = summary["final_losses"]
    lines = [
        f"# Training record: {summary['name']}",
        "",
        (
            f"Fine-tuned from `{_rel(args.init_from, out)}` (itself trained from scratch)"
            if args.init_from
            else "Trained from scratch"
        )
        + " on the CPU by `tools/train.py` on synthetic people rendered at training time by "
        "`tools/synth_data.py` (nothing downloaded, no pretrained weights).",
        "",
        "## Command",
        "",
        "```",
        cmd,
        "```",
        "",
        f"- seed: {args.seed} (weights init and sample order); synthetic training-set seed: "
        f"{summary['data_seed']}, {args.num_images} images of {args.width}x{args.height}",
        f"- iterations: {args.iterations} x batch {args.batch_size} "
        f"({args.iterations * args.batch_size} images seen), optimizer {args.optimizer}, lr "
        f"{args.lr:g}, weight decay {args.weight_decay:g}, {args.warmup} warm-up iterations, "
        f"cosine to {args.final_lr_frac:g} x lr, grad-norm clip {args.clip_grad:g}",
        f"- augmentation: horizontal flip p={args.hflip:g} (left/right keypoints swapped)"
        + (f", low-light p={args.low_light:g}" if args.low_light else ""),
        f"- wall time (training loop): {summary['train_seconds'] / 60:.1f} min",
        f"- machine: {machine()}",
        f"- parameters: {summary['parameters'] / 1e6:.2f} M; weights file "
        f"{summary['weights_bytes'] / 1e6:.1f} MB (fp32 safetensors, BN running stats included)",
        "",
        "## Final losses (mean of the last 50 iterations)",
        "",
        "| total | classifier | box_reg | keypoint | objectness | rpn_box_reg |",
        "|---|---|---|---|---|---|",
        "| " + " | ".join(f"{fl[k]:.4f}" for k in ("loss", *LOSS_KEYS)) + " |",
        "",
        "![loss curve](loss.png)",
        "",
        "Per-iteration values: `loss.csv`.",
        "",
    ]
    if summary.get("modifications"):
        lines += ["## Modifications against the base", ""]
        lines += [f"- {x}" for x in summary["modifications"]] + [""]
    if m:
        lines += [
            "## Validation metrics",
            "",
            f"Measured with pycocotools' COCOeval (iouType `bbox` and `keypoints`) on "
            f"`{_rel(args.val, out)}`, predictions on the CPU (torch threads: {args.threads}) at the "
            f"card's settings (min_size {kwargs['min_size']}, max_size {kwargs['max_size']}, "
            f"box_score_thresh {kwargs['box_score_thresh']}, box_detections_per_img "
            f"{kwargs['box_detections_per_img']}).",
            "",
            "| box AP | box AP50 | box AP75 | kp AP | kp AP50 | kp AP75 |",
            "|---|---|---|---|---|---|",
            "| "
            + " | ".join(
                f"{m[k]:.3f}"
                for k in ("box_ap", "box_ap50", "box_ap75", "kp_ap", "kp_ap50", "kp_ap75")
            )
            + " |",  # fmt: skip
            "",
            f"Predicting the whole set took {summary['predict_seconds']:.1f} s.",
            "",
        ]
    (out / "TRAINING.md").write_text("\n".join(lines), encoding="utf-8")


class _Log:
    def __init__(self, path: Path, append: bool = False):
        self.path = path
        if not append:
            path.write_text("")

    def __call__(self, msg: str) -> None:
        line = f"[{time.strftime('%H:%M:%S')}] {msg}"
        print(line, file=sys.stderr, flush=True)
        with open(self.path, "a") as f:
            f.write(line + "\n")


if __name__ == "__main__":
    main()
    raise SystemExit(0)
