"""Helpers of the Ultralytics verification scripts (run with a Python that has ``ultralytics``).

Ultralytics is AGPL-3.0: the plugin never imports it; only these scripts do, to produce
reference checkpoints and predictions to compare the plugin's ``format = "ultralytics"``
adapter with. Everything is built offline from the yaml files inside the package.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def require_ultralytics() -> None:
    """Exit 2 with a clear message when ``ultralytics`` is not importable here."""
    os.environ.setdefault("YOLO_OFFLINE", "1")
    os.environ.setdefault("YOLO_VERBOSE", "False")
    try:
        import ultralytics  # noqa: F401
    except ImportError:
        print(
            f"{Path(sys.argv[0]).name}: needs the 'ultralytics' package, which this Python "
            f"({sys.executable}) does not have. Run it with a virtual environment where "
            "`pip install ultralytics torch==2.14.1 torchvision==0.29.1` was done (ultralytics "
            "is AGPL-3.0 and is never a dependency of pytest-kpmodel).",
            file=sys.stderr,
        )
        raise SystemExit(2) from None
    from ultralytics import settings

    settings.update({"sync": False})


def build_pose_model(yaml_name: str, seed: int, scale: list[float] | None = None):
    """A random ``PoseModel`` (one class, COCO-17 keypoints) from the package's yaml file.

    ``scale``: replace the yaml's ``n`` scale ([depth, width, max_channels]) for a tiny model."""
    import torch
    from ultralytics.nn.tasks import PoseModel, yaml_model_load

    cfg = yaml_model_load(yaml_name)
    if scale is not None:
        cfg = {**cfg, "scales": {"n": scale}, "scale": "n"}
    torch.manual_seed(seed)
    model = PoseModel(cfg, nc=1, data_kpt_shape=(17, 3), verbose=False)
    model.names = {0: "person"}
    return model


def calibrate(model, images: list, score_bias: float, seed: int) -> None:
    """Give the random network realistic statistics: batch-norm running means/variances from
    real images (cumulative average, in train mode), then class biases of ``score_bias`` (plus
    noise) so that a few hundred anchors pass conf=0.001 and NMS has work to do; one eval
    forward at the end."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None
    model.train()
    with torch.no_grad():
        for x in images:
            model(x)
    for bn in bns:
        bn.momentum = 0.03
    model.eval()
    head = model.model[-1]
    with torch.no_grad():
        for branch in head.cv3:
            bias = branch[-1].bias
            bias.copy_(score_bias + 0.5 * torch.randn(bias.shape, generator=gen))
        # as the trainer's validation does: the head caches anchors, strides and the feature
        # shape (a torch.Size), so the saved file has what a trained one has
        model(images[0])


def save_trainer_checkpoint(model, path: Path, imgsz: int, data: str = "synthetic.yaml") -> None:
    """Write ``model`` as Ultralytics' trainer does: ``BaseTrainer.save_model``'s dict (EMA in
    fp16, optimizer state, args), then ``strip_optimizer`` (what training ends with)."""
    from copy import deepcopy
    from datetime import datetime

    import torch
    from ultralytics import __version__
    from ultralytics.cfg import get_cfg
    from ultralytics.utils.torch_utils import strip_optimizer

    args = get_cfg(overrides={"model": "random.yaml", "data": data, "imgsz": imgsz, "task": "pose"})
    model.args = args
    ema = deepcopy(model).half()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    torch.save(
        {
            "epoch": 0,
            "best_fitness": None,
            "model": None,
            "ema": ema,
            "updates": 1,
            "optimizer": optimizer.state_dict(),
            "scaler": None,
            "train_args": vars(args),
            "train_metrics": {"fitness": 0.0},
            "train_results": {"epoch": [1]},
            "date": datetime.now().isoformat(),
            "version": __version__,
            "license": "AGPL-3.0 License (https://ultralytics.com/license)",
            "docs": "https://docs.ultralytics.com",
        },
        path,
    )
    strip_optimizer(path)


def calibration_images(files: list[Path], size: int, n: int = 8) -> list:
    """A few real images, letterboxed by Ultralytics' own LetterBox, as a float batch list."""
    import cv2
    import numpy as np
    import torch
    from ultralytics.data.augment import LetterBox

    box = LetterBox((size, size), auto=False)
    out = []
    for f in files[:n]:
        im = box(image=cv2.imread(str(f)))[..., ::-1]
        out.append(torch.from_numpy(np.ascontiguousarray(im)).permute(2, 0, 1)[None].float() / 255)
    return out


def ultralytics_predict(weights: Path, files: list[Path], **kwargs: Any) -> dict[str, dict]:
    """``YOLO(weights).predict`` per file -> {file name: {boxes, scores, keypoints}} lists."""
    from ultralytics import YOLO

    model = YOLO(str(weights), task="pose")
    out = {}
    for f in files:
        r = model.predict(str(f), verbose=False, save=False, **kwargs)[0]
        out[f.name] = {
            "boxes": r.boxes.xyxy.tolist(),
            "scores": r.boxes.conf.tolist(),
            "keypoints": r.keypoints.data.tolist(),
        }
    return out


def ultralytics_val(
    weights: Path, data_yaml: Path, project: Path, **kwargs: Any
) -> tuple[Any, dict[str, dict]]:
    """``YOLO(weights).val(data=...)`` -> (its metrics, the per-image predictions it scored, at
    full precision, captured from ``PoseValidator.pred_to_json``)."""
    from ultralytics import YOLO
    from ultralytics.models.yolo.pose.val import PoseValidator

    captured: dict[str, dict] = {}
    original = PoseValidator.pred_to_json

    def capture(self, predn, pbatch):
        captured[Path(pbatch["im_file"]).name] = {
            "boxes": predn["bboxes"].tolist(),
            "scores": predn["conf"].tolist(),
            "keypoints": predn["keypoints"].tolist(),
        }
        return original(self, predn, pbatch)

    PoseValidator.pred_to_json = capture
    try:
        model = YOLO(str(weights), task="pose")
        metrics = model.val(
            data=str(data_yaml),
            save_json=True,
            plots=False,
            verbose=False,
            project=str(project),
            name="val",
            exist_ok=True,
            **kwargs,
        )
    finally:
        PoseValidator.pred_to_json = original
    return metrics, captured


def write_yolo_dataset(coco: dict, images_dir: Path, out: Path, files: list[str]) -> Path:
    """The COCO keypoint set's ``files`` as an Ultralytics pose dataset (images symlinked,
    one label line per person: class, normalised box centre/size, 17 x (x, y, visibility))."""
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "labels").mkdir(parents=True, exist_ok=True)
    by_name = {im["file_name"]: im for im in coco["images"]}
    anns: dict[int, list] = {}
    for a in coco["annotations"]:
        anns.setdefault(a["image_id"], []).append(a)
    for name in files:
        im = by_name[name]
        w, h = im["width"], im["height"]
        link = out / "images" / name
        if not link.exists():
            link.symlink_to((images_dir / name).resolve())
        lines = []
        for a in anns.get(im["id"], []):
            if a.get("iscrowd", 0) or not a.get("num_keypoints", 0):
                continue
            x, y, bw, bh = a["bbox"]
            vals = [(x + bw / 2) / w, (y + bh / 2) / h, bw / w, bh / h]
            k = a["keypoints"]
            for i in range(0, len(k), 3):
                v = k[i + 2]
                vals += [k[i] / w, k[i + 1] / h, float(v)] if v else [0.0, 0.0, 0.0]
            lines.append("0 " + " ".join(f"{v:.6f}" for v in vals))
        (out / "labels" / (Path(name).stem + ".txt")).write_text("\n".join(lines) + "\n")
    flip = [0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15]
    data = out / "data.yaml"
    data.write_text(
        json.dumps(
            {
                "path": str(out),
                "train": "images",
                "val": "images",
                "names": {0: "person"},
                "kpt_shape": [17, 3],
                "flip_idx": flip,
            }
        )
    )
    return data


def write_card(
    folder: Path, weights: Path, kwargs: dict[str, Any], fmt: str = "ultralytics"
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / weights.name
    if not target.exists():
        target.symlink_to(weights.resolve())
    lines = [
        "schema = 1",
        "[model]",
        f'name = "{weights.stem}"',
        f'format = "{fmt}"',
        f'weights = "{weights.name}"',
    ]
    if fmt == "ultralytics":
        lines.append('allowlist = "ultralytics"')
    else:
        lines.append('output_layout = "yolo-pose"')
    lines.append("[model.kwargs]")
    lines += [f"{k} = {json.dumps(v)}" for k, v in kwargs.items()]
    (folder / "kpmodel.toml").write_text("\n".join(lines) + "\n")
    return folder / "kpmodel.toml"


def plugin_predict(card: Path, files: list[Path]) -> dict[str, dict]:
    """The plugin's adapter on the same files (decoded by the plugin, as in a test run)."""
    from pytest_kpmodel.adapters import load_model
    from pytest_kpmodel.adapters.options import LoadOptions
    from pytest_kpmodel.card import load_card
    from pytest_kpmodel.data import decode_image

    model = load_model(load_card(card), LoadOptions())
    out = {}
    for f in files:
        pixels, err = decode_image(f)
        if pixels is None:
            raise SystemExit(f"{f}: {err}")
        p = model.predict([pixels.float() / 255])[0]
        out[f.name] = {
            "boxes": p.boxes.tolist(),
            "scores": p.scores.tolist(),
            "keypoints": p.keypoints.tolist(),
        }
    return out


def _match(rb, ob, rs, os_) -> list[tuple[int, int]]:
    """Pairs (ref, ours): each reference detection, by descending score, takes the unmatched
    detection of ours closest in box corners and score (NMS order alone is not stable when
    hundreds of random-model scores nearly tie)."""
    import numpy as np

    cost = np.abs(rb[:, None, :] - ob[None, :, :]).max(-1) + 1e3 * np.abs(
        rs[:, None] - os_[None, :]
    )
    taken = np.zeros(len(ob), dtype=bool)
    pairs = []
    for i in range(len(rb)):
        row = np.where(taken, np.inf, cost[i])
        j = int(np.argmin(row))
        if np.isfinite(row[j]):
            taken[j] = True
            pairs.append((i, j))
    return pairs


def compare(ref: dict[str, dict], ours: dict[str, dict]) -> dict[str, Any]:
    """Per image: the detection counts, then detections matched one to one (``_match``), pairs
    within 2 px and 0.01 score counted as the same detection (``unmatched``: detections of
    either side left without one); the largest box / keypoint-coordinate (px) and score
    differences over those pairs."""
    import numpy as np

    same = unmatched = 0
    box = kpt = score = vis = 0.0
    n_ref = n_ours = 0
    worst = ""
    for name, r in ref.items():
        o = ours[name]
        n_ref += len(r["scores"])
        n_ours += len(o["scores"])
        if len(r["scores"]) == len(o["scores"]):
            same += 1
        if not r["scores"] or not o["scores"]:
            continue
        rb, ob = np.array(r["boxes"]).reshape(-1, 4), np.array(o["boxes"]).reshape(-1, 4)
        rs, os_ = np.array(r["scores"]), np.array(o["scores"])
        rk, ok = np.array(r["keypoints"]), np.array(o["keypoints"])
        pairs = _match(rb, ob, rs, os_)
        # a pair further apart than this is two different detections: one side kept a
        # candidate the other did not (a score at the threshold, an NMS tie)
        close = [
            (a, b)
            for a, b in pairs
            if np.abs(rb[a] - ob[b]).max() < 2 and abs(rs[a] - os_[b]) < 1e-2
        ]
        unmatched += len(rs) + len(os_) - 2 * len(close)
        if not close:
            continue
        i, j = (np.array(x) for x in zip(*close, strict=True))
        d = float(np.abs(rb[i] - ob[j]).max())
        if d > box:
            box, worst = d, name
        kpt = max(kpt, float(np.abs(rk[i][..., :2] - ok[j][..., :2]).max()))
        vis = max(vis, float(np.abs(rk[i][..., 2] - ok[j][..., 2]).max()))
        score = max(score, float(np.abs(rs[i] - os_[j]).max()))
    return {
        "images": len(ref),
        "images_same_count": same,
        "detections_ultralytics": n_ref,
        "detections_plugin": n_ours,
        "unmatched": unmatched,
        "max_box_diff_px": box,
        "max_keypoint_diff_px": kpt,
        "max_score_diff": score,
        "max_keypoint_score_diff": vis,
        "worst_image": worst,
    }
