"""Train the small detectron2-family reference model with detectron2 itself, on the CPU.

Run it with a Python where detectron2 is importable (it is not a dependency of this project;
build it from its public source into a separate environment). Training images come from
:func:`synth_data.render` at training time, as for ``tools/train.py``. The model is detectron2's
model-zoo ``COCO-Keypoints/keypoint_rcnn_R_50_FPN_3x.yaml`` made small by config keys only: its
ResNet-50 at a quarter of the width, a 32-channel FPN, a small box head and a slim keypoint head,
trained from scratch. The script
writes into ``--out``:

- ``model_final.pkl``: the weights in detectron2's model-zoo layout (a pickled dict
  ``{"model": {name: numpy array}, "__author__": ..., "matching_heuristics": True}``), with the
  backbone's BatchNorm layers frozen into FrozenBN as in the zoo,
- ``config.yaml``: detectron2's full inference config (``cfg.dump()``) for these weights,
- ``kpmodel.toml``: the card (format ``detectron2``, the changed config keys as
  ``[model.kwargs]``, sha256, license, provenance, dependencies, dataset). ``[claims]`` are not
  written: they are measured with the plugin on the finished card,
- ``LICENSE`` (Apache-2.0), ``loss.csv``, ``loss.png``, ``train.log`` and ``TRAINING.md`` with
  box and keypoint AP measured by detectron2's ``COCOEvaluator`` on ``--val``.

Example::

    /path/to/d2-venv/bin/python tools/train_detectron2.py --out example_suite/models/kp-tiny-d2 \\
        --iterations 3000 --seed 2 --val example_suite/data/val/annotations.json
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import functools
import io
import json
import math
import pickle
import platform
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

_TOOLS = Path(__file__).resolve().parent
if str(_TOOLS) not in sys.path:
    sys.path.insert(0, str(_TOOLS))

import synth_data  # noqa: E402
import train as train_tv  # noqa: E402  (shared helpers of the torchvision training script)

ZOO_CONFIG = "COCO-Keypoints/keypoint_rcnn_R_50_FPN_3x.yaml"
ARCHITECTURE = "detectron2:keypoint_rcnn_R_50_FPN_3x"
WEIGHTS_NAME = "model_final.pkl"
LOSS_KEYS = ("loss_cls", "loss_box_reg", "loss_keypoint", "loss_rpn_cls", "loss_rpn_loc")
# What the plugin needs to run the card; detectron2 itself is needed only to train.
REQUIRES = ["torch>=2.4,<3", "torchvision>=0.19,<1", "numpy>=1.21"]
PYTHON = ">=3.10"
TRAIN_DATASET = "kp_synth_train"


# --------------------------------------------------------------------------------------------
# Config
# --------------------------------------------------------------------------------------------
def model_overrides(args) -> dict[str, Any]:
    """The config keys that define the model and its inference, in ``merge_from_list`` form.

    Those equal to the zoo config are dropped by :func:`changed_keys`, so the card holds exactly
    what differs from ``keypoint_rcnn_R_50_FPN_3x``.
    """
    return {
        # Narrower, not shallower: detectron2's R18/R34 fix res2 at 64 channels and, with an FPN,
        # need res5 (LastLevelMaxPool reads p5), which alone is 8.4 M parameters (34 MB). The
        # zoo's bottleneck ResNet-50 at a quarter of its width keeps every block and stride.
        "MODEL.RESNETS.WIDTH_PER_GROUP": args.resnet_width,
        "MODEL.RESNETS.RES2_OUT_CHANNELS": args.res2_channels,
        "MODEL.FPN.OUT_CHANNELS": args.fpn_channels,
        "MODEL.ANCHOR_GENERATOR.SIZES": [[int(s)] for s in args.anchor_sizes],
        "MODEL.ROI_BOX_HEAD.FC_DIM": args.box_head_dim,
        "MODEL.ROI_KEYPOINT_HEAD.CONV_DIMS": list(args.keypoint_head_convs),
        "INPUT.MIN_SIZE_TEST": args.min_size,
        "INPUT.MAX_SIZE_TEST": args.max_size,
        "TEST.DETECTIONS_PER_IMAGE": args.detections_per_image,
    }


def train_overrides(args) -> dict[str, Any]:
    """Keys that only training reads (the inference model does not depend on them)."""
    return {
        # From scratch: every stage trains, with BatchNorm; the BN layers are frozen into
        # FrozenBN (the zoo's norm) when the weights are written.
        "MODEL.BACKBONE.FREEZE_AT": 0,
        "MODEL.RESNETS.NORM": "BN",
        "INPUT.MIN_SIZE_TRAIN": [args.min_size],
        "INPUT.MAX_SIZE_TRAIN": args.max_size,
        "MODEL.RPN.PRE_NMS_TOPK_TRAIN": args.rpn_pre_nms_topk_train,
        "MODEL.RPN.POST_NMS_TOPK_TRAIN": args.rpn_post_nms_topk_train,
        "MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE": args.roi_batch_size_per_image,
        "SOLVER.IMS_PER_BATCH": args.batch_size,
        "SOLVER.BASE_LR": args.lr,
        "SOLVER.BASE_LR_END": args.lr * args.final_lr_frac,
        "SOLVER.MAX_ITER": args.iterations,
        "SOLVER.LR_SCHEDULER_NAME": "WarmupCosineLR",
        "SOLVER.WARMUP_ITERS": args.warmup,
        "SOLVER.WARMUP_FACTOR": 0.001,
        "SOLVER.WEIGHT_DECAY": args.weight_decay,
        "SOLVER.CLIP_GRADIENTS.ENABLED": args.clip_grad > 0,
        "SOLVER.CLIP_GRADIENTS.CLIP_TYPE": "norm",
        "SOLVER.CLIP_GRADIENTS.CLIP_VALUE": args.clip_grad,
        "SEED": args.seed,
    }


def zoo_cfg():
    from detectron2 import model_zoo
    from detectron2.config import get_cfg

    cfg = get_cfg()
    cfg.merge_from_file(model_zoo.get_config_file(ZOO_CONFIG))
    return cfg


def _cfg_get(cfg, key: str):
    node = cfg
    for part in key.split("."):
        node = node[part]
    return node


def _same(a: Any, b: Any) -> bool:
    norm = lambda v: json.loads(json.dumps(v, default=list))  # noqa: E731  (tuples == lists)
    return norm(a) == norm(b)


def changed_keys(overrides: dict[str, Any], base) -> dict[str, Any]:
    """The overrides whose value differs from ``base`` (a detectron2 CfgNode)."""
    return {k: v for k, v in overrides.items() if not _same(_cfg_get(base, k), v)}


def _merge_list(overrides: dict[str, Any]) -> list[Any]:
    out: list[Any] = []
    for k, v in overrides.items():
        out += [k, v]
    return out


def build_cfgs(args):
    """(training cfg, inference cfg, card kwargs)."""
    base = zoo_cfg()
    kwargs = changed_keys(model_overrides(args), base)
    common = {"MODEL.DEVICE": "cpu", "MODEL.WEIGHTS": "", **kwargs}
    infer = zoo_cfg()
    infer.merge_from_list(_merge_list(common))
    train = zoo_cfg()
    train.merge_from_list(_merge_list({**common, **train_overrides(args)}))
    if args.init_from is not None:
        train.MODEL.WEIGHTS = str(args.init_from)  # loaded by DetectionCheckpointer, as the zoo's
    infer.freeze()
    train.freeze()
    return train, infer, kwargs


# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------
def to_d2_annotation(ann: dict) -> dict:
    """A synthetic COCO annotation as detectron2's dataset dict entry, as ``load_coco_json``
    makes it: category 0, absolute XYWH box, keypoint pixel indices + 0.5 (continuous
    coordinates; detectron2's COCOEvaluator subtracts the 0.5 again)."""
    from detectron2.structures import BoxMode

    kps = [v + 0.5 if i % 3 != 2 else v for i, v in enumerate(ann["keypoints"])]
    return {
        "bbox": list(ann["bbox"]),
        "bbox_mode": BoxMode.XYWH_ABS,
        "category_id": 0,
        "iscrowd": int(ann.get("iscrowd", 0)),
        "keypoints": kps,
    }


def register_metadata(name: str) -> None:
    from detectron2.data import MetadataCatalog
    from detectron2.data.datasets.builtin_meta import (
        COCO_PERSON_KEYPOINT_FLIP_MAP,
        COCO_PERSON_KEYPOINT_NAMES,
    )

    meta = MetadataCatalog.get(name)
    if not hasattr(meta, "keypoint_names"):
        meta.set(
            thing_classes=["person"],
            keypoint_names=COCO_PERSON_KEYPOINT_NAMES,
            keypoint_flip_map=COCO_PERSON_KEYPOINT_FLIP_MAP,
        )


class SynthD2Train:
    """Item ``i``: synthetic image ``i % num_images`` of ``seed`` as a detectron2 training
    input, through detectron2's own augmentations (ResizeShortestEdge, RandomFlip with the COCO
    keypoint flip map) plus, with probability ``low_light_p``, ``train.low_light``.

    The random choices come from numpy's global RNG, which detectron2's
    ``worker_init_reset_seed`` seeds in every DataLoader worker."""

    def __init__(self, cfg, seed, num_images, width, height, flip_p, low_light_p):
        from detectron2.data import detection_utils as utils
        from detectron2.data import transforms as T

        register_metadata(TRAIN_DATASET)
        self.seed, self.num_images = seed, num_images
        self.width, self.height = width, height
        self.low_light_p = low_light_p
        self.flip_indices = utils.create_keypoint_hflip_indices([TRAIN_DATASET])
        augs = [T.ResizeShortestEdge(cfg.INPUT.MIN_SIZE_TRAIN, cfg.INPUT.MAX_SIZE_TRAIN, "choice")]
        if flip_p > 0:
            augs.append(T.RandomFlip(prob=flip_p, horizontal=True))
        self.augs = T.AugmentationList(augs)

    def __len__(self):
        return self.num_images

    def __getitem__(self, i):
        import torch
        from detectron2.data import detection_utils as utils
        from detectron2.data import transforms as T

        index = i % self.num_images
        pixels, anns = synth_data.render(self.seed, index, self.width, self.height)
        if self.low_light_p > 0 and np.random.rand() < self.low_light_p:
            gen = torch.Generator().manual_seed(int(np.random.randint(2**31)))
            rgb = torch.from_numpy(np.ascontiguousarray(pixels)).permute(2, 0, 1).float() / 255
            dark = train_tv.low_light(rgb, gen).mul(255).round().to(torch.uint8)
            pixels = dark.permute(1, 2, 0).numpy()
        aug = T.AugInput(np.ascontiguousarray(pixels[:, :, ::-1]))  # detectron2 wants BGR
        transforms = self.augs(aug)
        image = aug.image
        shape = image.shape[:2]
        annos = [
            utils.transform_instance_annotations(
                to_d2_annotation(a), transforms, shape, keypoint_hflip_indices=self.flip_indices
            )
            for a in anns
        ]
        instances = utils.filter_empty_instances(utils.annotations_to_instances(annos, shape))
        return {
            "image": torch.as_tensor(np.ascontiguousarray(image.transpose(2, 0, 1))),
            "instances": instances,
            "height": shape[0],
            "width": shape[1],
            "image_id": index,
        }


def _worker_init(worker_id: int) -> None:
    import torch
    from detectron2.data.build import worker_init_reset_seed

    torch.set_num_threads(1)
    worker_init_reset_seed(worker_id)


def _as_list(batch):
    return batch


# --------------------------------------------------------------------------------------------
# Weights
# --------------------------------------------------------------------------------------------
def frozen_state(model) -> dict[str, np.ndarray]:
    """The state dict as the inference model (FrozenBN) has it: fp32 numpy arrays, the BN
    layers' ``num_batches_tracked`` counters dropped (FrozenBN has none)."""
    out = {}
    for k, v in model.state_dict().items():
        if k.endswith("num_batches_tracked"):
            continue
        out[k] = v.detach().cpu().float().numpy().copy()
    return out


def save_d2_pkl(state: dict[str, np.ndarray], path: Path, author: str) -> None:
    """Write detectron2's model-zoo layout as its ``tools/convert-*-to-d2.py`` do: a plain dict
    of numpy arrays, ``pickle.dump`` with Python 3's default protocol (4). Protocol 2 would store
    each array's bytes as a latin-1 text string re-encoded through ``_codecs.encode``, 1.5x the
    size; the zoo's files are the size of their raw arrays, so they are not protocol 2 either."""
    data = {"model": state, "__author__": author, "matching_heuristics": True}
    with open(path, "wb") as f:
        pickle.dump(data, f, protocol=4)


def load_inference_model(cfg, weights: Path):
    """The inference model exactly as DefaultPredictor builds it, with ``weights`` loaded."""
    from detectron2.checkpoint import DetectionCheckpointer
    from detectron2.modeling import build_model

    model = build_model(cfg)
    model.eval()
    DetectionCheckpointer(model).load(str(weights))
    return model


# --------------------------------------------------------------------------------------------
# Continuing from an earlier stage
# --------------------------------------------------------------------------------------------
def read_pkl_state(path: Path) -> dict[str, np.ndarray]:
    """The ``model`` arrays of a model-zoo .pkl (as detectron2's Checkpointer unpickles it)."""
    with open(path, "rb") as f:
        data = pickle.load(f, encoding="latin1")
    state = data.get("model") if isinstance(data, dict) else None
    if not isinstance(state, dict):
        raise SystemExit(f"--init-from {path}: not a model-zoo .pkl (no 'model' dict)")
    return state


def check_loaded(model, state: dict[str, np.ndarray], path: Path) -> None:
    """Every array of ``state`` is in ``model``, unchanged, and only BN counters are left over.

    DetectionCheckpointer logs mismatches instead of failing; a stage that silently started
    from partly random weights must not be recorded as a continuation."""
    have = {k: v.detach().cpu().numpy() for k, v in model.state_dict().items()}
    unknown = sorted(set(state) - set(have))
    differ = sorted(k for k in state if k in have and not np.array_equal(have[k], state[k]))
    missing = sorted(k for k in set(have) - set(state) if not k.endswith("num_batches_tracked"))
    if unknown or differ or missing:
        raise SystemExit(
            f"--init-from {path} does not fit this model: unknown {unknown[:5]}, not loaded "
            f"{differ[:5]}, missing {missing[:5]} (the model keys must equal the earlier run's)"
        )


def _command_of(training_md: Path) -> str | None:
    """The command block of a TRAINING.md written by this script."""
    text = training_md.read_text(encoding="utf-8")
    head = "## Command\n\n```\n"
    if head not in text:
        return None
    return text.split(head, 1)[1].split("\n```", 1)[0].strip()


def _done_summary(log: Path) -> dict[str, Any]:
    done = [ln for ln in log.read_text(encoding="utf-8").splitlines() if "] done: " in ln]
    return json.loads(done[-1].split("] done: ", 1)[1]) if done else {}


def earlier_stage(weights: Path) -> dict[str, Any]:
    """What the record keeps of the run that wrote ``weights``: its sha256, and, when its folder
    is one this script wrote (``kpmodel.toml`` pinning that sha256), its command, loss rows,
    summary (wall time, losses, COCOEvaluator figures) and log."""
    sha = train_tv.sha256_file(weights)
    folder = weights.parent
    info: dict[str, Any] = {"path": str(weights), "name": weights.name, "sha256": sha,
                            "rows": [], "summary": {}, "command": None, "log": None}  # fmt: skip
    card = folder / "kpmodel.toml"
    if not card.exists():
        return info
    import tomllib

    pinned = tomllib.loads(card.read_text(encoding="utf-8")).get("model", {}).get("sha256")
    if pinned != sha:
        raise SystemExit(f"--init-from {weights}: its folder's card pins sha256 {pinned}, the "
                         f"file is {sha}; give the weights that card describes")  # fmt: skip
    if (folder / "loss.csv").exists():
        with open(folder / "loss.csv", newline="") as f:
            info["rows"] = [{k: int(float(v)) if k == "iteration" else float(v)
                             for k, v in r.items()} for r in csv.DictReader(f)]  # fmt: skip
    if (folder / "train.log").exists():
        info["log"] = str(folder / "train.log")
        info["summary"] = _done_summary(folder / "train.log")
    if (folder / "TRAINING.md").exists():
        info["command"] = _command_of(folder / "TRAINING.md")
    return info


def staged_rows(earlier: list[dict], rows: list[dict]) -> list[dict]:
    """The earlier stage's iterations, then this run's: ``stage``, the stage's own
    ``iteration`` and a running ``step``."""
    out = []
    for stage, part in ((1, earlier), (2 if earlier else 1, rows)):
        for r in part:
            out.append({"stage": stage, "step": len(out) + 1,
                        **{k: v for k, v in r.items() if k not in ("stage", "step")}})  # fmt: skip
    return out


# --------------------------------------------------------------------------------------------
# Evaluation (detectron2's COCOEvaluator)
# --------------------------------------------------------------------------------------------
def register_val(annotations: Path, images: Path) -> str:
    from detectron2.data import DatasetCatalog
    from detectron2.data.datasets import register_coco_instances

    name = "kp_synth_val"
    if name not in DatasetCatalog.list():
        register_coco_instances(name, {}, str(annotations), str(images))
        register_metadata(name)
    return name


def evaluate(model, cfg, dataset: str, max_images: int | None = None):
    """Box and keypoint AP/AP50/AP75 (fractions) by detectron2's COCOEvaluator with
    pycocotools' COCOeval; the evaluator's printed summary; the prediction wall time."""
    from detectron2.data import DatasetCatalog, DatasetMapper, build_detection_test_loader
    from detectron2.evaluation import COCOEvaluator, inference_on_dataset

    dicts = DatasetCatalog.get(dataset)[:max_images]
    loader = build_detection_test_loader(dicts, mapper=DatasetMapper(cfg, is_train=False))
    evaluator = COCOEvaluator(dataset, tasks=("bbox", "keypoints"), distributed=False,
                              use_fast_impl=False)  # fmt: skip
    if max_images is not None:
        # COCOEvaluator scores against every image of the dataset's json unless told the ids;
        # the images left unpredicted would count as all missed.
        evaluator.evaluate = functools.partial(evaluator.evaluate,
                                               img_ids=[d["image_id"] for d in dicts])  # fmt: skip
    buf = io.StringIO()
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(buf):
        res = inference_on_dataset(model, loader, evaluator)
    seconds = time.perf_counter() - t0
    out = {}
    for task, prefix in (("bbox", "box"), ("keypoints", "kp")):
        r = res.get(task, {})
        for key, name in (("AP", "ap"), ("AP50", "ap50"), ("AP75", "ap75")):
            v = r.get(key, float("nan"))
            out[f"{prefix}_{name}"] = max(0.0, v / 100) if math.isfinite(v) else 0.0
    return out, buf.getvalue(), seconds


# --------------------------------------------------------------------------------------------
# Card, logs
# --------------------------------------------------------------------------------------------
def write_card(out: Path, *, name, version, weights: Path, kwargs, source, modifications,
               val: Path | None, val_images: Path | None) -> Path:  # fmt: skip
    tv = train_tv._toml_value
    lines = train_tv.card_model_lines(name, version, "detectron2", weights, ARCHITECTURE)
    lines += [f"{json.dumps(k)} = {tv(v)}" for k, v in kwargs.items()]
    lines += ["", "[provenance]", f"source = {tv(source)}", "modifications = ["]
    lines += [f"    {tv(m)}," for m in modifications] + ["]"]
    lines += train_tv.card_license_lines(PYTHON, REQUIRES)
    return train_tv.write_card_file(out, lines + train_tv.card_dataset_lines(out, val, val_images))


def describe_modifications(kwargs: dict[str, Any], args) -> list[str]:
    """[provenance] modifications: what differs from the zoo model, in words."""
    mods = []
    if "MODEL.RESNETS.WIDTH_PER_GROUP" in kwargs or "MODEL.RESNETS.RES2_OUT_CHANNELS" in kwargs:
        w = kwargs.get("MODEL.RESNETS.WIDTH_PER_GROUP", 64)
        c = kwargs.get("MODEL.RESNETS.RES2_OUT_CHANNELS", 256)
        mods.append(f"backbone: the same ResNet-50 (bottleneck, stride in 1x1) at {w}/64 of its "
                    f"width: bottlenecks of {w}-{w * 8}, outputs {c}-{c * 8} channels")  # fmt: skip
    if "MODEL.FPN.OUT_CHANNELS" in kwargs:
        mods.append(f"FPN: {kwargs['MODEL.FPN.OUT_CHANNELS']} channels instead of 256")
    if "MODEL.ANCHOR_GENERATOR.SIZES" in kwargs:
        mods.append(f"anchors: sizes {kwargs['MODEL.ANCHOR_GENERATOR.SIZES']} on p2-p6 for "
                    "30-250 px people")  # fmt: skip
    if "MODEL.ROI_BOX_HEAD.FC_DIM" in kwargs:
        mods.append(f"box head: 2 fc of {kwargs['MODEL.ROI_BOX_HEAD.FC_DIM']} instead of 1024")
    if "MODEL.ROI_KEYPOINT_HEAD.CONV_DIMS" in kwargs:
        dims = kwargs["MODEL.ROI_KEYPOINT_HEAD.CONV_DIMS"]
        mods.append(f"keypoint head: {len(dims)} convs of {sorted(set(dims))} channels "
                    "instead of 8 of 512, same deconv + 2x upsample")  # fmt: skip
    if "INPUT.MIN_SIZE_TEST" in kwargs or "INPUT.MAX_SIZE_TEST" in kwargs:
        mods.append(f"test size: shortest edge {kwargs.get('INPUT.MIN_SIZE_TEST', 800)}, max "
                    f"{kwargs.get('INPUT.MAX_SIZE_TEST', 1333)} (the images are 384x288)")  # fmt: skip
    if "TEST.DETECTIONS_PER_IMAGE" in kwargs:
        mods.append(f"at most {kwargs['TEST.DETECTIONS_PER_IMAGE']} detections per image")
    aug = "horizontal flip"
    if args.low_light > 0:
        aug += f" and low-light augmentation (p={args.low_light:g})"
    if getattr(args, "init_from", None) is None:
        mods.append(
            f"trained from scratch (no pretrained weights) with detectron2 on synthetic people "
            f"for {args.iterations} iterations of batch {args.batch_size} ({aug}); backbone "
            "BatchNorm frozen into FrozenBN for inference"
        )
        return mods
    sha = train_tv.sha256_file(args.init_from)
    mods.append(
        f"continued from an earlier run's weights ({args.init_from.name}, sha256 {sha}; trained "
        "from scratch, no pretrained weights, by this script with detectron2 on synthetic "
        f"people) for {args.iterations} iterations of batch {args.batch_size} at lr "
        f"{args.lr:g} with cosine decay ({aug}); backbone BatchNorm frozen into FrozenBN for "
        "inference"
    )
    return mods


def environment() -> str:
    import detectron2
    import torch

    return (
        f"detectron2 {detectron2.__version__} (built from source for the CPU), torch "
        f"{torch.__version__}, numpy {np.__version__}, Python {platform.python_version()}"
    )


# --------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    train_tv.add_run_arguments(ap)
    ap.add_argument("--init-from", type=Path, default=None,
                    help="model_final.pkl of an earlier run of this script to continue from "
                    "(MODEL.WEIGHTS); when its folder holds that run's card, its command, "
                    "losses and figures go into this record as stage 1")  # fmt: skip
    ap.add_argument("--note", action="append", default=[],
                    help="a line for TRAINING.md's notes (repeatable)")  # fmt: skip
    ap.add_argument("--iterations", type=int, default=3000)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--num-images", type=int, default=12000, help="synthetic training images")
    ap.add_argument("--width", type=int, default=384)
    ap.add_argument("--height", type=int, default=288)
    ap.add_argument("--lr", type=float, default=1.5e-3, help="AdamW learning rate")
    ap.add_argument("--weight-decay", type=float, default=1e-4)
    ap.add_argument("--warmup", type=int, default=150, help="linear warm-up iterations")
    train_tv.add_schedule_tail_arguments(ap)
    ap.add_argument("--val", type=Path, default=None,
                    help="COCO annotations to evaluate on with COCOEvaluator")  # fmt: skip
    ap.add_argument("--val-images", type=Path, default=None)
    train_tv.add_loop_arguments(ap, threads=1, eval_images=60)
    m = ap.add_argument_group("model (detectron2 config keys; see model_overrides)")
    m.add_argument("--resnet-width", type=int, default=16,
                   help="MODEL.RESNETS.WIDTH_PER_GROUP (zoo: 64)")  # fmt: skip
    m.add_argument("--res2-channels", type=int, default=64,
                   help="MODEL.RESNETS.RES2_OUT_CHANNELS (zoo: 256)")  # fmt: skip
    m.add_argument("--fpn-channels", type=int, default=32)
    m.add_argument("--box-head-dim", type=int, default=128)
    m.add_argument("--keypoint-head-convs", type=int, nargs="+", default=[64] * 8,
                   help="channels of each keypoint-head conv")  # fmt: skip
    m.add_argument("--anchor-sizes", type=int, nargs=5, default=[16, 32, 64, 128, 256],
                   help="one anchor size per FPN level p2-p6 (zoo: 32 ... 512)")  # fmt: skip
    m.add_argument("--min-size", type=int, default=288)
    m.add_argument("--max-size", type=int, default=384)
    m.add_argument("--detections-per-image", type=int, default=20)
    t = ap.add_argument_group("training-only detectron2 config keys")
    t.add_argument("--rpn-pre-nms-topk-train", type=int, default=600)
    t.add_argument("--rpn-post-nms-topk-train", type=int, default=300)
    t.add_argument("--roi-batch-size-per-image", type=int, default=64)
    return ap


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Train, save, evaluate and write the folder; returns a summary."""
    return train_tv.with_threads(_train, build_parser().parse_args(argv), argv)


def _train(args, argv) -> dict[str, Any]:
    import torch
    from detectron2.modeling import build_model
    from detectron2.solver import build_lr_scheduler, get_default_optimizer_params
    from detectron2.utils.env import seed_all_rng
    from detectron2.utils.events import EventStorage

    seed_all_rng(args.seed)
    out, name, source, data_seed = train_tv.run_folder(args)
    if data_seed == 7:
        raise SystemExit("--data-seed 7 is the validation set's seed; train on another one")
    cfg, infer_cfg, kwargs = build_cfgs(args)
    log = train_tv._Log(out / "train.log")
    log(f"machine: {train_tv.machine()}")
    log(f"environment: {environment()}")
    log(f"card kwargs (vs {ZOO_CONFIG}): {kwargs}")
    log(f"training-only keys: {train_overrides(args)}")

    model = build_model(cfg)
    n_params = sum(p.numel() for p in model.parameters())
    log(f"parameters: {n_params / 1e6:.2f} M")
    earlier: dict[str, Any] | None = None
    if args.init_from is not None:
        from detectron2.checkpoint import DetectionCheckpointer

        earlier = earlier_stage(args.init_from)
        DetectionCheckpointer(model).load(cfg.MODEL.WEIGHTS)
        check_loaded(model, read_pkl_state(args.init_from), args.init_from)
        log(f"initialised from {args.init_from} (MODEL.WEIGHTS; sha256 {earlier['sha256']}); "
            f"earlier stage: {len(earlier['rows'])} iterations on record, command "
            f"{earlier['command']!r}")  # fmt: skip
    params = get_default_optimizer_params(model, base_lr=args.lr, weight_decay=args.weight_decay,
                                          weight_decay_norm=0.0, weight_decay_bias=0.0)  # fmt: skip
    opt = torch.optim.AdamW(params, lr=args.lr)
    sched = build_lr_scheduler(cfg, opt)

    dataset = SynthD2Train(cfg, data_seed, args.num_images, args.width, args.height,
                           flip_p=args.hflip, low_light_p=args.low_light)  # fmt: skip
    loader = train_tv.endless_loader(dataset, args, _as_list, _worker_init)
    val_name = None
    if args.val is not None:
        val_images = args.val_images or args.val.parent / "images"
        val_name = register_val(args.val, val_images)

    rows: list[dict] = []
    evals: list[tuple[int, dict[str, float]]] = []
    model.train()
    t0 = time.perf_counter()
    batches = iter(loader)
    with EventStorage(0) as storage:
        for it in range(args.iterations):
            storage.iter = it
            losses = model(next(batches))
            loss = train_tv.optimise(model, opt, sched, losses, it, args.clip_grad)
            storage.step()
            lr = opt.param_groups[0]["lr"]
            train_tv.record_step(rows, log, args, it, lr, loss, losses, LOSS_KEYS, t0)
            if args.eval_every and val_name and (it + 1) % args.eval_every == 0:
                t_eval = time.perf_counter()
                met, _, _ = evaluate(model, cfg, val_name, args.eval_images)
                evals.append((it + 1, met))
                log(f"eval at {it + 1} (first {args.eval_images} images): "
                    + " ".join(f"{k} {v:.3f}" for k, v in met.items()))  # fmt: skip
                model.train()
                t0 += time.perf_counter() - t_eval  # keep evaluation out of the training time
    train_s = time.perf_counter() - t0
    del batches, loader

    weights = out / WEIGHTS_NAME
    save_d2_pkl(frozen_state(model), weights, author=f"pytest-kpmodel tools/train_detectron2.py "
                f"({name} {args.version})")  # fmt: skip
    cfg_dump = infer_cfg.clone()
    cfg_dump.defrost()
    cfg_dump.MODEL.WEIGHTS = WEIGHTS_NAME
    (out / "config.yaml").write_text(cfg_dump.dump(), encoding="utf-8")
    all_rows = staged_rows(earlier["rows"], rows) if earlier and earlier["rows"] else rows
    train_tv.write_loss_csv(out / "loss.csv", all_rows)
    train_tv.plot_losses(all_rows, out / "loss.png", f"{name}: detectron2 training loss", LOSS_KEYS)
    if earlier and earlier["log"]:
        (out / "train-stage1.log").write_bytes(Path(earlier["log"]).read_bytes())
    train_tv.write_license(out)

    metrics: dict[str, float] = {}
    summary_text, predict_s, max_diff = "", None, None
    if val_name is not None:
        frozen = load_inference_model(infer_cfg, weights)
        max_diff = _max_output_diff(model, frozen, infer_cfg, val_name)
        log(f"exported model vs training model on the first val image: max |diff| {max_diff:.2e}")
        metrics, summary_text, predict_s = evaluate(frozen, infer_cfg, val_name)
        log(f"val metrics (COCOEvaluator, {WEIGHTS_NAME}): {metrics}; predict {predict_s:.1f} s")
        log("COCOeval summary:\n" + summary_text)

    modifications = describe_modifications(kwargs, args)
    card = write_card(out, name=name, version=args.version, weights=weights, kwargs=kwargs,
                      source=source, modifications=modifications, val=args.val,
                      val_images=args.val_images)  # fmt: skip
    final = train_tv.final_losses(rows, LOSS_KEYS)
    summary = {
        **train_tv.summary_head(name, card, weights, n_params, train_s),
        "final_losses": final,
        "metrics": metrics,
        "evals": evals,
        "predict_seconds": predict_s,
        "export_max_diff": max_diff,
        "data_seed": data_seed,
        "kwargs": kwargs,
        "init_from": None
        if earlier is None
        else {
            "path": earlier["path"],
            "sha256": earlier["sha256"],
            "iterations": len(earlier["rows"]),
        },  # fmt: skip
    }
    _write_training_md(out, args, argv, summary, earlier)
    log(f"done: {json.dumps(summary, default=str)}")
    return summary


def _max_output_diff(trained, frozen, cfg, dataset: str) -> float:
    """Largest box/keypoint/score difference between the BN training model (in eval mode) and
    the FrozenBN model loaded from the written file, on one validation image."""
    import torch
    from detectron2.data import DatasetCatalog, DatasetMapper

    inputs = [DatasetMapper(cfg, is_train=False)(DatasetCatalog.get(dataset)[0])]
    was_training = trained.training
    trained.eval()
    with torch.inference_mode():
        a = trained(inputs)[0]["instances"]
        b = frozen(inputs)[0]["instances"]
    trained.train(was_training)
    if len(a) != len(b):
        return float("inf")
    if len(a) == 0:
        return 0.0
    diffs = [
        (a.pred_boxes.tensor - b.pred_boxes.tensor).abs().max(),
        (a.scores - b.scores).abs().max(),
        (a.pred_keypoints - b.pred_keypoints).abs().max(),
    ]
    return float(max(diffs))


_METRIC_KEYS = ("box_ap", "box_ap50", "box_ap75", "kp_ap", "kp_ap50", "kp_ap75")
_METRIC_HEAD = ["| box AP | box AP50 | box AP75 | kp AP | kp AP50 | kp AP75 |",
                "|---|---|---|---|---|---|"]  # fmt: skip


def _metric_row(m: dict[str, float]) -> str:
    return "| " + " | ".join(f"{m[k]:.3f}" for k in _METRIC_KEYS) + " |"


def _loss_table(fl: dict[str, float]) -> list[str]:
    return [
        "| total | " + " | ".join(k.removeprefix("loss_") for k in LOSS_KEYS) + " |",
        "|---" * (1 + len(LOSS_KEYS)) + "|",
        "| " + " | ".join(f"{fl[k]:.4f}" for k in ("loss", *LOSS_KEYS)) + " |",
    ]


def _stage1_lines(earlier: dict[str, Any], out: Path) -> list[str]:
    """The earlier run's own record: command, wall time, losses, figures."""
    s1 = earlier["summary"]
    lines = [
        "## Stage 1: the earlier run",
        "",
        f"Trained from scratch by this script; its weights `{earlier['name']}` (sha256 "
        f"`{earlier['sha256']}`) are stage 2's `MODEL.WEIGHTS`. From its own record "
        "(its `TRAINING.md` and `train.log`"
        + (", copied here as `train-stage1.log`" if (out / "train-stage1.log").exists() else "")
        + "):",
        "",
    ]
    if earlier["command"]:
        lines += ["```", earlier["command"], "```", ""]
    if s1.get("train_seconds") is not None:
        lines.append(f"- wall time (training loop): {s1['train_seconds'] / 60:.1f} min, "
                     f"{len(earlier['rows'])} iterations; synthetic training-set seed "
                     f"{s1.get('data_seed', '?')}")  # fmt: skip
    if s1.get("final_losses"):
        lines += ["- final losses (mean of its last 50 iterations):", "", *_loss_table(
            s1["final_losses"]), ""]  # fmt: skip
    if s1.get("metrics"):
        lines += [f"- detectron2 `COCOEvaluator` on the same validation set, after stage 1 "
                  f"(predicting it took {s1.get('predict_seconds', float('nan')):.1f} s):", "",
                  *_METRIC_HEAD, _metric_row(s1["metrics"]), ""]  # fmt: skip
    if s1.get("evals"):
        lines.append("- its intermediate evaluations (first images of the validation set): "
                     + "; ".join(f"after {it}: box AP {e['box_ap']:.3f}, kp AP {e['kp_ap']:.3f}"
                                 for it, e in s1["evals"]))  # fmt: skip
        lines.append("")
    return lines


def _write_training_md(out: Path, args, argv, summary, earlier=None) -> None:
    cmd = "python tools/train_detectron2.py " + shlex.join(sys.argv[1:] if argv is None else argv)
    m, fl = summary["metrics"], summary["final_losses"]
    if earlier is None:
        how = "Trained from scratch"
    else:
        how = (
            f"Trained in two stages: stage 1 from scratch (below), then stage 2, this command, "
            f"continued from stage 1's `{earlier['name']}` (sha256 `{earlier['sha256']}`, loaded "
            "as `MODEL.WEIGHTS` by detectron2's `DetectionCheckpointer` and checked array by "
            "array; a fresh AdamW state and LR schedule). Both stages trained"
        )
    lines = [
        f"# Training record: {summary['name']}",
        "",
        f"{how} on the CPU with detectron2 itself (`tools/train_detectron2.py`, "
        f"run with a Python where detectron2 is importable) on synthetic people rendered at "
        f"training time by `tools/synth_data.py` (nothing downloaded, no pretrained weights). "
        f"The config is detectron2's model-zoo `{ZOO_CONFIG}` with the keys below changed.",
        "",
        "## Command" + ("" if earlier is None else " (stage 2)"),
        "",
        "```",
        cmd,
        "```",
        "",
        f"- seed: {args.seed} (weights init, sample order, augmentation); synthetic training-set "
        f"seed: {summary['data_seed']}, {args.num_images} images of {args.width}x{args.height}",
        f"- iterations: {args.iterations} x batch {args.batch_size} "
        f"({args.iterations * args.batch_size} images seen), AdamW lr {args.lr:g}, weight decay "
        f"{args.weight_decay:g} (none on norms and biases), detectron2's WarmupCosineLR: "
        f"{args.warmup} linear warm-up iterations, cosine to {args.final_lr_frac:g} x lr; "
        f"grad-norm clip {args.clip_grad:g}",
        f"- augmentation: detectron2's RandomFlip p={args.hflip:g} with the COCO keypoint flip "
        "map (left/right swapped)"
        + (f", low-light p={args.low_light:g}" if args.low_light else ""),
        f"- wall time (training loop): {summary['train_seconds'] / 60:.1f} min",
        f"- machine: {train_tv.machine()}",
        f"- environment: {environment()}",
        f"- parameters: {summary['parameters'] / 1e6:.2f} M; `{WEIGHTS_NAME}` "
        f"{summary['weights_bytes'] / 1e6:.1f} MB (fp32 numpy arrays, FrozenBN statistics "
        "included)",
        "",
        "## Config",
        "",
        f"Changed against `{ZOO_CONFIG}` (the card's `[model.kwargs]`):",
        "",
    ]
    lines += [f"- `{k}` = `{json.dumps(v)}`" for k, v in summary["kwargs"].items()]
    lines += ["", "Training only (the inference model does not read them):", ""]
    lines += [f"- `{k}` = `{json.dumps(v)}`" for k, v in train_overrides(args).items()]
    lines += [
        "",
        "The backbone trains with BatchNorm (`MODEL.RESNETS.NORM = BN`, nothing frozen) because "
        "there are no pretrained weights to freeze; when the weights are written, every BN "
        "becomes the zoo's FrozenBN with the same running statistics, so `config.yaml` (the "
        "full inference config, `cfg.dump()`) keeps `NORM: FrozenBN`"
        + (
            f" (largest output difference, training model in eval mode vs the written file, "
            f"on one image: {summary['export_max_diff']:.1e})."
            if summary.get("export_max_diff") is not None
            else "."
        ),
        "",
        "## Final losses (mean of the last 50 iterations)",
        "",
        *_loss_table(fl),
        "",
        "![loss curve](loss.png)",
        "",
        "Per-iteration values: `loss.csv`"
        + (
            "."
            if earlier is None or not earlier["rows"]
            else " (both stages: `stage`, the stage's own `iteration`, a running `step`; "
            "`elapsed_s` restarts with each stage)."
        ),  # fmt: skip
        "",
    ]
    if m:
        lines += [
            "## Validation metrics",
            "",
            f"Measured with detectron2's `COCOEvaluator` (pycocotools' COCOeval, iouType `bbox` "
            f"and `keypoints`, COCO sigmas) on `{train_tv._rel(args.val, out)}`, with "
            f"`{WEIGHTS_NAME}` loaded into the inference config by `DetectionCheckpointer`, on "
            f"the CPU (torch threads: {args.threads}).",
            "",
            *_METRIC_HEAD,
            _metric_row(m),
            "",
            f"Predicting the whole set took {summary['predict_seconds']:.1f} s.",
            "",
        ]
    if summary["evals"]:
        lines += [f"Intermediate evaluations (first {args.eval_images} validation images, "
                  "scored on those images only, excluded from the wall time):", ""]  # fmt: skip
        lines += [
            f"- after {it}: box AP {e['box_ap']:.3f}, kp AP {e['kp_ap']:.3f}"
            for it, e in summary["evals"]
        ] + [""]
    if earlier is not None:
        lines += _stage1_lines(earlier, out)
        s1 = earlier["summary"]
        if s1.get("train_seconds") is not None:
            total = s1["train_seconds"] + summary["train_seconds"]
            lines += [f"Both stages: {len(earlier['rows']) + args.iterations} iterations, "
                      f"{total / 60:.1f} min of training loop.", ""]  # fmt: skip
    if args.note:
        lines += ["## Notes", ""] + [f"- {n}" for n in args.note] + [""]
    (out / "TRAINING.md").write_text("\n".join(lines), encoding="utf-8")


if __name__ == "__main__":
    main()
    raise SystemExit(0)
