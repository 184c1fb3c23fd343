"""Tiny models, cards and COCO sets built on the fly for the plugin's own tests."""

from __future__ import annotations

import json
from pathlib import Path

TINY_KWARGS = {
    "min_size": 64,
    "max_size": 96,
    "fpn_channels": 16,
    "box_head_dim": 32,
    "keypoint_head_depth": 1,
    "keypoint_head_channels": 16,
    "box_detections_per_img": 5,
    "box_score_thresh": 0.0,
}


def tiny_module(seed: int = 0, **overrides):
    import torch

    from pytest_kpmodel.zoo import keypointrcnn_compact

    torch.manual_seed(seed)
    return keypointrcnn_compact(**{**TINY_KWARGS, **overrides}).eval()


def write_card(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "kpmodel.toml"
    path.write_text(text)
    return path


def make_model(
    folder: Path,
    fmt: str = "safetensors",
    seed: int = 0,
    dataset: Path | None = None,
    extra: str = "",
    name: str = "tiny",
) -> Path:
    """Write a random-weight tiny model and its card; returns the card path."""
    import torch

    from pytest_kpmodel.provenance.digests import sha256_file

    folder.mkdir(parents=True, exist_ok=True)
    module = tiny_module(seed)
    if fmt == "safetensors":
        from safetensors.torch import save_file

        weights = folder / "model.safetensors"
        save_file({k: v.contiguous() for k, v in module.state_dict().items()}, str(weights))
    elif fmt == "pytorch":
        weights = folder / "model.pt"
        torch.save(module.state_dict(), weights)
    elif fmt == "torchscript":
        weights = folder / "model.ts"
        torch.jit.script(module).save(str(weights))
    else:
        raise ValueError(fmt)
    kwargs = "\n".join(f"{k} = {json.dumps(v)}" for k, v in TINY_KWARGS.items())
    ds = ""
    if dataset is not None:
        ds = f'[dataset]\nannotations = "{dataset}"\n'
    arch = 'architecture = "pytest_kpmodel.zoo:keypointrcnn_compact"\n'
    text = (
        f'schema = 1\n{extra}\n[model]\nname = "{name}"\nversion = "0.1"\nformat = "{fmt}"\n'
        f'weights = "{weights.name}"\nsha256 = "{sha256_file(weights)}"\n{arch}'
        f"[model.kwargs]\n{kwargs}\n{ds}"
    )
    return write_card(folder, text)


def make_dataset(folder: Path, n: int = 3, size: tuple[int, int] = (96, 72), seed: int = 0) -> Path:
    """A small COCO keypoint set of random-noise JPEGs with one random person each."""
    import numpy as np
    from PIL import Image

    from pytest_kpmodel.keypoints import COCO_NAMES

    rng = np.random.default_rng(seed)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    w, h = size
    images, anns = [], []
    for i in range(n):
        name = f"{i:04d}.jpg"
        pixels = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / "images" / name, quality=90)
        images.append({"id": i + 1, "file_name": name, "width": w, "height": h})
        x0, y0 = float(rng.uniform(0, w / 2)), float(rng.uniform(0, h / 2))
        bw, bh = float(rng.uniform(10, w / 2)), float(rng.uniform(10, h / 2))
        kps = []
        for _ in COCO_NAMES:
            kps += [float(x0 + rng.uniform(0, bw)), float(y0 + rng.uniform(0, bh)), 2]
        anns.append(
            {
                "id": i + 1,
                "image_id": i + 1,
                "category_id": 1,
                "bbox": [x0, y0, bw, bh],
                "area": bw * bh * 0.6,
                "iscrowd": 0,
                "keypoints": kps,
                "num_keypoints": 17,
            }
        )
    coco = {
        "images": images,
        "annotations": anns,
        "categories": [{"id": 1, "name": "person", "keypoints": list(COCO_NAMES), "skeleton": []}],
    }
    path = folder / "annotations.json"
    path.write_text(json.dumps(coco))
    return path


ORACLE_SOURCE = '''
"""A test model that looks up each image's ground truth: AP is exactly known."""
import hashlib
import json
from pathlib import Path

import torch

from pytest_kpmodel.adapters.base import Prediction
from pytest_kpmodel.data import decode_image


def _key(image):
    return hashlib.sha256((image.float() * 255).round().to(torch.uint8).numpy().tobytes()).hexdigest()


class Oracle:
    def __init__(self, annotations, shift=0.0, keep=1.0):
        coco = json.loads(Path(annotations).read_text())
        folder = Path(annotations).parent / "images"
        by_image = {}
        for ann in coco["annotations"]:
            by_image.setdefault(ann["image_id"], []).append(ann)
        self.table = {}
        for im in coco["images"]:
            pixels, _ = decode_image(folder / im["file_name"])
            anns = by_image.get(im["id"], [])[: max(0, round(len(by_image.get(im["id"], [])) * keep))]
            self.table[_key(pixels.float() / 255)] = anns
        self.shift = shift

    def predict(self, images):
        out = []
        for image in images:
            anns = self.table[_key(image.cpu())]
            boxes = torch.tensor([[a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2],
                                   a["bbox"][1] + a["bbox"][3]] for a in anns]).reshape(-1, 4)
            kps = torch.tensor([a["keypoints"] for a in anns], dtype=torch.float32).reshape(-1, 17, 3)
            kps[..., 0] += self.shift
            kps[..., 2] = 1.0
            out.append(Prediction(boxes.float(), torch.ones(len(anns)),
                                  torch.ones(len(anns), dtype=torch.long), kps))
        return out


def build(annotations, shift=0.0, keep=1.0):
    return Oracle(annotations, shift, keep)
'''


def make_oracle(folder: Path, annotations: Path, extra: str = "", **kwargs) -> Path:
    """A python-format model returning the ground truth (optionally shifted/thinned)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "oracle_model.py").write_text(ORACLE_SOURCE)
    kw = "".join(f"{k} = {json.dumps(v)}\n" for k, v in kwargs.items())
    return write_card(
        folder,
        f'schema = 1\n{extra}\n[model]\nname = "oracle"\nformat = "python"\n'
        f'architecture = "oracle_model:build"\n[model.kwargs]\nannotations = "{annotations}"\n{kw}'
        f'[dataset]\nannotations = "{annotations}"\n',
    )
