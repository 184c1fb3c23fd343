"""The plugin's detectron2 keypoint R-CNN against detectron2's own ``DefaultPredictor``.

Run it with a Python where detectron2 is importable (it is not a dependency of this project and
this script never builds or installs it; without it the script says so and exits 2)::

    /path/to/d2-venv/bin/python benchmarks/detectron2_parity.py --config r50
    /path/to/d2-venv/bin/python benchmarks/detectron2_parity.py --config r18
    /path/to/d2-venv/bin/python benchmarks/detectron2_parity.py --card example_suite/models/kp-tiny-d2

``--config`` builds a random-initialised model of a preset config (``r50``: the zoo's
``keypoint_rcnn_R_50_FPN_3x`` unchanged; ``r18``: the same with ``MODEL.RESNETS.DEPTH = 18``;
``ref``: the narrow ResNet-50 of the trained reference model; ``tiny``: the CI checkpoint's
config; ``variants``: most inference keys changed at once, on a narrow ResNeXt-101) with ``detectron2.modeling.build_model`` and a seed. detectron2's init leaves frozen
batch norms at identity and gives every box and RPN score almost the same value, which would
make the comparison blind to batch-norm handling and fragile at every top-k, so the script
draws non-trivial frozen-BN statistics and widens the classifier and objectness weights; the
test score threshold stays detectron2's. ``--card`` takes a card's weights and
``[model.kwargs]`` as they are.

The weights are written in both detectron2 layouts: the model-zoo ``.pkl`` (``{"model":
{name: ndarray}, "__author__": ..., "matching_heuristics": True}``) and ``Checkpointer.save``'s
``.pth`` (with the optimizer and scheduler state a training run saves). ``DefaultPredictor``
(loading the ``.pkl`` through ``DetectionCheckpointer``) runs on each image; the plugin, in a
subprocess with ``--plugin-python`` (default: the project's ``.venv``), loads each layout
through a ``format = "detectron2"`` card and predicts all images in one ``predict`` call. Images:
``--images`` synthetic validation images (384x288) and five of other sizes and aspect ratios cut
from them, written as PNG so both sides read the same pixels.

Printed per layout: images, detections (detectron2 / plugin / matched: same class, in the same
rank, IoU > 0.99), max |box diff| px, max |keypoint diff| px (x, y), max |score diff|, max
|keypoint score diff|. Targets: the same detections, boxes and keypoints within 1e-3 px, scores
within 1e-4. Exit status 1 when a target is missed.

``--onnx`` also tries detectron2's own ONNX export (what ``tools/deploy/export_model.py
--export-method tracing --format onnx`` does) with both of torch's exporters and prints each
outcome and the order of the flattened outputs (needs ``onnx`` and ``onnxscript`` installed next
to detectron2).

``--golden DIR`` (with ``--config tiny``) runs on three small images instead and writes what the
CI test (tests/adapters/detectron2) compares against: the checkpoint in both layouts, the
images and detectron2's outputs (``golden.json``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import pickle
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
ZOO = "COCO-Keypoints/keypoint_rcnn_R_50_FPN_3x.yaml"
ARCHITECTURE = "detectron2:keypoint_rcnn_R_50_FPN_3x"
PRESETS: dict[str, dict[str, Any]] = {
    "r50": {},
    "r18": {"MODEL.RESNETS.DEPTH": 18, "MODEL.RESNETS.RES2_OUT_CHANNELS": 64},
    "ref": {  # as tools/train_detectron2.py trains example_suite/models/kp-tiny-d2
        "MODEL.RESNETS.WIDTH_PER_GROUP": 16,
        "MODEL.RESNETS.RES2_OUT_CHANNELS": 64,
        "MODEL.FPN.OUT_CHANNELS": 32,
        "MODEL.ANCHOR_GENERATOR.SIZES": [[16], [32], [64], [128], [256]],
        "MODEL.ROI_BOX_HEAD.FC_DIM": 128,
        "MODEL.ROI_KEYPOINT_HEAD.CONV_DIMS": [64] * 8,
        "INPUT.MIN_SIZE_TEST": 288,
        "INPUT.MAX_SIZE_TEST": 384,
        "TEST.DETECTIONS_PER_IMAGE": 20,
    },
    "tiny": {
        "MODEL.RESNETS.STEM_OUT_CHANNELS": 8,
        "MODEL.RESNETS.RES2_OUT_CHANNELS": 16,
        "MODEL.RESNETS.WIDTH_PER_GROUP": 4,
        "MODEL.FPN.OUT_CHANNELS": 16,
        "MODEL.ANCHOR_GENERATOR.SIZES": [[16], [32], [64], [128], [256]],
        "MODEL.ROI_BOX_HEAD.FC_DIM": 32,
        "MODEL.ROI_KEYPOINT_HEAD.CONV_DIMS": [16, 16],
        "MODEL.RPN.POST_NMS_TOPK_TEST": 300,
        "INPUT.MIN_SIZE_TEST": 128,
        "INPUT.MAX_SIZE_TEST": 192,
        "TEST.DETECTIONS_PER_IMAGE": 12,
    },
    # most inference keys away from the zoo value at once, on a narrow ResNeXt-101
    "variants": {
        "MODEL.RESNETS.DEPTH": 101,
        "MODEL.RESNETS.NUM_GROUPS": 2,
        "MODEL.RESNETS.WIDTH_PER_GROUP": 4,
        "MODEL.RESNETS.STRIDE_IN_1X1": False,
        "MODEL.RESNETS.STEM_OUT_CHANNELS": 8,
        "MODEL.RESNETS.RES2_OUT_CHANNELS": 16,
        "MODEL.FPN.OUT_CHANNELS": 16,
        "MODEL.FPN.FUSE_TYPE": "avg",
        "MODEL.ANCHOR_GENERATOR.SIZES": [[16, 24], [32, 48], [64, 96], [128, 192], [256, 384]],
        "MODEL.ANCHOR_GENERATOR.OFFSET": 0.5,
        "MODEL.RPN.CONV_DIMS": [16, 16],
        "MODEL.RPN.BBOX_REG_WEIGHTS": [1.0, 1.0, 2.0, 2.0],
        "MODEL.PROPOSAL_GENERATOR.MIN_SIZE": 2,
        "MODEL.ROI_BOX_HEAD.NUM_CONV": 1,
        "MODEL.ROI_BOX_HEAD.CONV_DIM": 8,
        "MODEL.ROI_BOX_HEAD.NUM_FC": 1,
        "MODEL.ROI_BOX_HEAD.FC_DIM": 32,
        "MODEL.ROI_BOX_HEAD.CLS_AGNOSTIC_BBOX_REG": True,
        "MODEL.ROI_BOX_HEAD.POOLER_TYPE": "ROIAlign",
        "MODEL.ROI_BOX_HEAD.POOLER_SAMPLING_RATIO": 2,
        "MODEL.ROI_BOX_HEAD.USE_SIGMOID_CE": True,
        "MODEL.ROI_KEYPOINT_HEAD.CONV_DIMS": [16, 16, 16],
        "MODEL.ROI_KEYPOINT_HEAD.POOLER_RESOLUTION": 12,
        "MODEL.ROI_HEADS.NUM_CLASSES": 3,
        "MODEL.ROI_HEADS.NMS_THRESH_TEST": 0.6,
        "INPUT.FORMAT": "RGB",
        "MODEL.PIXEL_MEAN": [123.675, 116.28, 103.53],
        "MODEL.PIXEL_STD": [58.395, 57.12, 57.375],
        "INPUT.MIN_SIZE_TEST": 160,
        "INPUT.MAX_SIZE_TEST": 200,
        "TEST.DETECTIONS_PER_IMAGE": 15,
    },
}
# (name, crop box in the 384x288 source or None, resize to (w, h) or None)
EXTRA_SHAPES = [
    ("wide", (0, 64, 384, 224), None),
    ("tall", (120, 0, 240, 288), None),
    ("large", None, (640, 480)),
    ("small", (40, 30, 200, 150), (80, 60)),
    ("square", (48, 0, 336, 288), (300, 300)),
]
# the CI golden set: small, three aspect ratios, up- and downscaled by the tiny config
GOLDEN_SHAPES = [
    ("golden_val", None, (192, 144)),
    ("golden_tall", (120, 0, 240, 288), (60, 144)),
    ("golden_small", (40, 30, 200, 150), (80, 60)),
]
TARGETS = {"box": 1e-3, "keypoint": 1e-3, "score": 1e-4, "keypoint_score": 1e-4}


def require_detectron2() -> None:
    try:
        import detectron2  # noqa: F401
    except ImportError as exc:
        print(
            f"detectron2 is not importable with {sys.executable} ({exc}). This script compares "
            "against detectron2 itself and does not build or install it: run it with the "
            "Python of an environment where detectron2 is installed.",
            file=sys.stderr,
        )
        raise SystemExit(2) from None


# ------------------------------------------------------------------------------ detectron2 side
def make_cfg(overrides: dict[str, Any]):
    from detectron2 import model_zoo
    from detectron2.config import get_cfg

    cfg = get_cfg()
    cfg.merge_from_file(model_zoo.get_config_file(ZOO))
    merge: list[Any] = []
    for k, v in {**overrides, "MODEL.DEVICE": "cpu", "MODEL.WEIGHTS": ""}.items():
        merge += [k, v]
    cfg.merge_from_list(merge)
    return cfg


def random_model(cfg, seed: int, calibration_image: Path):
    """detectron2's own init, non-trivial frozen-BN statistics, then the score layers rescaled
    so that a random network gives spread-out scores and keypoint logits (see ``calibrate``)."""
    import torch
    from detectron2.layers import FrozenBatchNorm2d
    from detectron2.modeling import build_model

    torch.manual_seed(seed)
    model = build_model(cfg).eval()
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, FrozenBatchNorm2d):
                n = m.num_features
                m.weight.copy_(torch.empty(n).uniform_(0.7, 1.3, generator=g))
                m.bias.copy_(torch.randn(n, generator=g) * 0.1)
                m.running_mean.copy_(torch.randn(n, generator=g) * 0.1)
                m.running_var.copy_(torch.empty(n).uniform_(0.6, 1.6, generator=g))
    calibrate(model, cfg, calibration_image, g)
    return model


# (module, std of its output after rescaling, bias added to output channel 0..n-2 / all)
CALIBRATION = [
    ("proposal_generator.rpn_head.objectness_logits", 2.0, 0.0),
    ("proposal_generator.rpn_head.anchor_deltas", 0.1, 0.0),
    ("roi_heads.box_predictor.cls_score", 1.5, 1.0),
    ("roi_heads.box_predictor.bbox_pred", 0.5, 0.0),
    ("roi_heads.keypoint_head.score_lowres", 2.0, 0.0),
]


def calibrate(model, cfg, image: Path, g) -> None:
    """Random weights give huge activations after 50 layers: every detection would score 1.0
    and keypoint logits would be in the thousands. Each score layer in turn is rescaled (its
    bias zeroed, its weights scaled) so that its output on one image has a set spread; ``cls_score`` also gets
    +1 on the foreground logits so that detections clear the test threshold."""
    import detectron2.data.transforms as T
    import torch
    from PIL import Image

    bgr = np.asarray(Image.open(image).convert("RGB"))[:, :, ::-1]
    aug = T.ResizeShortestEdge([cfg.INPUT.MIN_SIZE_TEST] * 2, cfg.INPUT.MAX_SIZE_TEST)
    x = torch.as_tensor(
        aug.get_transform(bgr).apply_image(bgr).astype("float32").transpose(2, 0, 1)
    )
    modules = dict(model.named_modules())
    for name, target, fg_bias in CALIBRATION:
        layer = modules[name]
        seen: list[torch.Tensor] = []
        hook = layer.register_forward_hook(lambda m, i, o, seen=seen: seen.append(o.detach()))
        with torch.no_grad():
            layer.bias.zero_()
            # keypoint decoding asserts on overflowing logits; the hook has seen them by then
            with contextlib.suppress(AssertionError):
                model([{"image": x}])
            hook.remove()
            out = torch.cat(
                [o.flatten(1) if o.dim() == 2 else o.transpose(0, 1).flatten(1) for o in seen], 1
            )
            std = float(out.std()) or 1.0
            layer.weight.mul_(target / std)
            if fg_bias:
                layer.bias[:-1] += fg_bias


def save_layouts(model, cfg, folder: Path) -> dict[str, Path]:
    """The weights as a model-zoo .pkl and as a Checkpointer .pth (with optimizer state)."""
    from detectron2.checkpoint import DetectionCheckpointer
    from detectron2.solver import build_lr_scheduler, build_optimizer

    folder.mkdir(parents=True, exist_ok=True)
    pkl = folder / "model_final.pkl"
    state = {k: v.detach().cpu().numpy() for k, v in model.state_dict().items()}
    with open(pkl, "wb") as f:
        pickle.dump(
            {
                "model": state,
                "__author__": "pytest-kpmodel benchmarks/detectron2_parity.py",
                "matching_heuristics": True,
            },
            f,
        )
    opt = build_optimizer(cfg, model)
    sched = build_lr_scheduler(cfg, opt)
    DetectionCheckpointer(model, str(folder), optimizer=opt, scheduler=sched).save(
        "model_final", iteration=0
    )
    return {"pkl": pkl, "pth": folder / "model_final.pth"}


def write_images(folder: Path, count: int, shapes=EXTRA_SHAPES) -> list[Path]:
    from PIL import Image

    src = sorted((ROOT / "example_suite" / "data" / "val" / "images").glob("*.jpg"))
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i, path in enumerate(src[:count]):
        dst = folder / f"val_{i:02d}.png"
        Image.open(path).convert("RGB").save(dst)
        out.append(dst)
    base = Image.open(src[0]).convert("RGB")
    for name, crop, size in shapes:
        im = base.crop(crop) if crop else base
        im = im.resize(size, Image.BILINEAR) if size else im
        dst = folder / f"{name}_{im.width}x{im.height}.png"
        im.save(dst)
        out.append(dst)
    return out


def detectron2_outputs(cfg, weights: Path, images: list[Path]) -> list[dict[str, np.ndarray]]:
    from detectron2.engine import DefaultPredictor
    from PIL import Image

    cfg = cfg.clone()
    cfg.MODEL.WEIGHTS = str(weights)
    predictor = DefaultPredictor(cfg)
    outs = []
    for path in images:
        bgr = np.asarray(Image.open(path).convert("RGB"))[:, :, ::-1]
        inst = predictor(bgr)["instances"].to("cpu")
        outs.append(
            {
                "boxes": inst.pred_boxes.tensor.numpy(),
                "scores": inst.scores.numpy(),
                "labels": inst.pred_classes.numpy() + 1,
                "keypoints": inst.pred_keypoints.numpy(),
            }
        )
    return outs


# ------------------------------------------------------------------------------ plugin side
PLUGIN_RUN = r"""
import json, sys
import numpy as np
from pytest_kpmodel.adapters import load_model
from pytest_kpmodel.adapters.options import LoadOptions
from pytest_kpmodel.card import load_card
from pytest_kpmodel.data import decode_image
from pytest_kpmodel.security import scan_path

card_path, out_path, *images = sys.argv[1:]
card = load_card(card_path)
report = scan_path(card.model.weights)
report.raise_if_unsafe()
model = load_model(card, LoadOptions(scan_report=report))
batch = [decode_image(p)[0].float() / 255 for p in images]
preds = model.predict(batch)
arrays = {}
for i, p in enumerate(preds):
    for k in ("boxes", "scores", "labels", "keypoints"):
        arrays[f"{i}_{k}"] = getattr(p, k).cpu().numpy()
np.savez(out_path, **arrays)
print(json.dumps({"kind": report.kind, "verdict": report.verdict}))
"""


def write_card(folder: Path, weights: Path, kwargs: dict[str, Any]) -> Path:
    lines = [
        "schema = 1",
        "[model]",
        'name = "d2-parity"',
        'format = "detectron2"',
        f'weights = "{weights.name}"',
        f'architecture = "{ARCHITECTURE}"',
        "[model.kwargs]",
    ] + [f'"{k}" = {json.dumps(v)}' for k, v in kwargs.items()]
    card = folder / f"kpmodel-{weights.suffix[1:]}.toml"
    card.write_text("\n".join(lines) + "\n")
    return card


def plugin_outputs(
    python: str, card: Path, images: list[Path], work: Path
) -> tuple[list[dict[str, np.ndarray]], dict]:
    out = work / f"plugin-{card.stem}.npz"
    proc = subprocess.run(
        [python, "-c", PLUGIN_RUN, str(card), str(out), *map(str, images)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise SystemExit(f"the plugin failed on {card}:\n{proc.stderr[-3000:]}")
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    data = np.load(out)
    keys = ("boxes", "scores", "labels", "keypoints")
    return [{k: data[f"{i}_{k}"] for k in keys} for i in range(len(images))], info


# ------------------------------------------------------------------------------ comparison
def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(-1)
    area_a = (a[:, 2:] - a[:, :2]).prod(-1)
    area_b = (b[:, 2:] - b[:, :2]).prod(-1)
    return inter / np.maximum(area_a[:, None] + area_b[None] - inter, 1e-12)


def compare(ref: list[dict], got: list[dict]) -> dict[str, Any]:
    fig = {"images": len(ref), "detectron2": 0, "plugin": 0, "matched": 0}
    fig.update({f"max_{k}_diff": 0.0 for k in TARGETS})
    for r, g in zip(ref, got, strict=True):
        fig["detectron2"] += len(r["boxes"])
        fig["plugin"] += len(g["boxes"])
        n = min(len(r["boxes"]), len(g["boxes"]))
        if n == 0:
            continue
        ious = np.diag(iou(r["boxes"][:n], g["boxes"][:n]))
        same = (ious > 0.99) & (r["labels"][:n] == g["labels"][:n])
        fig["matched"] += int(same.sum())
        m = np.nonzero(same)[0]
        if len(m) == 0:
            continue
        diffs = {
            "box": np.abs(r["boxes"][m] - g["boxes"][m]),
            "keypoint": np.abs(r["keypoints"][m][..., :2] - g["keypoints"][m][..., :2]),
            "score": np.abs(r["scores"][m] - g["scores"][m]),
            "keypoint_score": np.abs(r["keypoints"][m][..., 2] - g["keypoints"][m][..., 2]),
        }
        for k, d in diffs.items():
            fig[f"max_{k}_diff"] = max(fig[f"max_{k}_diff"], float(d.max()))
    fig["same_detections"] = fig["detectron2"] == fig["plugin"] == fig["matched"]
    fig["within_targets"] = fig["same_detections"] and all(
        fig[f"max_{k}_diff"] <= t for k, t in TARGETS.items()
    )
    return fig


def golden(folder: Path, files: dict[str, Path], images: list[Path], kwargs: dict, ref) -> None:
    import detectron2
    import torch

    folder.mkdir(parents=True, exist_ok=True)
    for path in [*files.values(), *images]:
        shutil.copy(path, folder / path.name)
    entries = []
    for path, out in zip(images, ref, strict=True):
        entries.append(
            {
                "image": path.name,
                "boxes": out["boxes"].astype(float).tolist(),
                "scores": out["scores"].astype(float).tolist(),
                "labels": out["labels"].astype(int).tolist(),
                "keypoints": out["keypoints"].astype(float).tolist(),
            }
        )
    meta = {
        "what": "detectron2 DefaultPredictor outputs for the checkpoint beside this file",
        "made_by": "benchmarks/detectron2_parity.py --config tiny --golden",
        "architecture": ARCHITECTURE,
        "kwargs": kwargs,
        "detectron2": detectron2.__version__,
        "torch": torch.__version__,
        "outputs": entries,
    }
    (folder / "golden.json").write_text(json.dumps(meta, indent=1) + "\n")


def _cause(exc: Exception) -> str:
    """An exporter's failure in one line: its reason and where in detectron2 it stopped."""
    import re

    text = str(exc)
    reason = re.search(
        r"(Could not guard on data-dependent expression \S+|Unsupported: [^\n]*? on tensor of unknown rank)",
        text,
    )
    frames = re.findall(r'File "[^"]*(detectron2/[^"]+)", line (\d+), in (\w+)', text)
    first = text.strip().split("\n")[0][:200]
    out = f"{type(exc).__name__}: {reason.group(1).strip() if reason else first}"
    if frames:
        path, line, func = frames[-1]
        out += f" (at {path}:{line} in {func})"
    else:
        where = re.search(r"# [^ ]*(detectron2/[^:]+):(\d+)", text)
        if where:
            out += f" (at {where.group(1)}:{where.group(2)})"
    return out


def try_detectron2_onnx(cfg, weights: Path, image: Path, work: Path) -> list[str]:
    """What ``tools/deploy/export_model.py --export-method tracing --format onnx`` does
    (``TracingAdapter`` around ``inference(do_postprocess=False)``, ``torch.onnx.export`` at
    detectron2's opset), with torch's default exporter and the TorchScript-based one: one line
    per attempt, and the flattened output order. Needs ``onnx``/``onnxscript`` beside detectron2."""
    import detectron2.data.transforms as T
    import torch
    from detectron2.checkpoint import DetectionCheckpointer
    from detectron2.export import STABLE_ONNX_OPSET_VERSION, TracingAdapter
    from detectron2.modeling import build_model
    from PIL import Image

    model = build_model(cfg).eval()
    DetectionCheckpointer(model).load(str(weights))
    bgr = np.asarray(Image.open(image).convert("RGB"))[:, :, ::-1]
    aug = T.ResizeShortestEdge([cfg.INPUT.MIN_SIZE_TEST] * 2, cfg.INPUT.MAX_SIZE_TEST)
    x = torch.as_tensor(
        aug.get_transform(bgr).apply_image(bgr).astype("float32").transpose(2, 0, 1)
    )

    def inference(m, inputs):
        return [{"instances": m.inference(inputs, do_postprocess=False)[0]}]

    lines = []
    for name, kw in (("default (dynamo)", {}), ("TorchScript-based", {"dynamo": False})):
        traceable = TracingAdapter(model, [{"image": x}], inference)
        try:
            with torch.no_grad():
                torch.onnx.export(
                    traceable, (x,), str(work / "d2-export.onnx"),
                    opset_version=STABLE_ONNX_OPSET_VERSION, **kw,
                )  # fmt: skip
            lines.append(f"detectron2 ONNX export, {name} exporter: succeeded")
        except Exception as exc:  # noqa: BLE001 - the failure is the finding
            lines.append(f"detectron2 ONNX export, {name} exporter: {_cause(exc)}")
        model.eval()
    traceable = TracingAdapter(model, [{"image": x}], inference)
    with torch.no_grad():
        outs = traceable(x)
    schema = traceable.outputs_schema.schemas[0].schemas[0]
    lines.append(
        "TracingAdapter outputs: "
        + ", ".join(
            f"{k} {tuple(o.shape)}" for k, o in zip([*schema.keys, "image_size"], outs, strict=True)
        )
    )
    return lines


def default_plugin_python() -> str:
    venv = ROOT / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    src = ap.add_mutually_exclusive_group()
    src.add_argument("--config", choices=sorted(PRESETS), default="r50")
    src.add_argument("--card", type=Path, help="a detectron2 card (its weights and kwargs)")
    ap.add_argument("--images", type=int, default=6, help="synthetic validation images")
    ap.add_argument("--no-extra-shapes", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--plugin-python", default=default_plugin_python())
    ap.add_argument("--work", type=Path, help="keep the checkpoints and outputs here")
    ap.add_argument("--golden", type=Path, help="write the CI golden data into this folder")
    ap.add_argument("--json", type=Path, help="write the figures as JSON here")
    ap.add_argument(
        "--onnx", action="store_true", help="also try detectron2's own ONNX export (tracing)"
    )
    args = ap.parse_args()
    require_detectron2()
    import torch

    torch.set_num_threads(max(1, torch.get_num_threads()))
    work = args.work or Path(tempfile.mkdtemp(prefix="d2-parity-"))
    work.mkdir(parents=True, exist_ok=True)
    if args.golden is not None:
        images = write_images(work / "images", 0, GOLDEN_SHAPES)
    else:
        images = write_images(
            work / "images", args.images, () if args.no_extra_shapes else EXTRA_SHAPES
        )
    if args.card is not None:
        import tomllib

        card_file = args.card / "kpmodel.toml" if args.card.is_dir() else args.card
        model = tomllib.loads(card_file.read_text())["model"]
        kwargs = dict(model.get("kwargs", {}))
        cfg = make_cfg(kwargs)
        src = card_file.parent / model["weights"]
        files = {src.suffix[1:]: work / src.name}
        shutil.copy(src, files[src.suffix[1:]])
        label = str(args.card)
    else:
        kwargs = dict(PRESETS[args.config])
        cfg = make_cfg(kwargs)
        files = save_layouts(random_model(cfg, args.seed, images[0]), cfg, work)
        label = f"{args.config} (random init, seed {args.seed})"
    weights_for_d2 = files.get("pkl") or next(iter(files.values()))
    ref = detectron2_outputs(cfg, weights_for_d2, images)
    results = {}
    for layout, path in files.items():
        card = write_card(work, path, kwargs)
        got, info = plugin_outputs(args.plugin_python, card, images, work)
        fig = compare(ref, got)
        fig["scan"] = f"{info['kind']} {info['verdict']}"
        results[layout] = fig
    if args.golden is not None:
        golden(args.golden, files, images, kwargs, ref)
    if args.onnx:
        for line in try_detectron2_onnx(cfg, weights_for_d2, images[0], work):
            print(line)
    print(f"detectron2 parity: {label}; detectron2 ran the .{weights_for_d2.suffix[1:]} file")
    print(
        f"{'layout':6} {'scan':18} {'images':>6} {'d2 dets':>8} {'plugin':>7} {'matched':>8} "
        f"{'box px':>9} {'kp px':>9} {'score':>9} {'kp score':>9}"
    )
    for layout, f in results.items():
        print(
            f"{layout:6} {f['scan']:18} {f['images']:>6} {f['detectron2']:>8} {f['plugin']:>7} "
            f"{f['matched']:>8} {f['max_box_diff']:>9.2e} {f['max_keypoint_diff']:>9.2e} "
            f"{f['max_score_diff']:>9.2e} {f['max_keypoint_score_diff']:>9.2e}"
        )
    if args.json is not None:
        args.json.write_text(json.dumps({"model": label, "layouts": results}, indent=1) + "\n")
    ok = all(f["within_targets"] for f in results.values())
    print("targets (same detections, 1e-3 px, 1e-4 score):", "met" if ok else "MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
