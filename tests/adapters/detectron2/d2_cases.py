"""The golden detectron2 checkpoint under data/ and helpers to put it behind a card.

``data/`` was written by ``benchmarks/detectron2_parity.py --config tiny --golden`` with
detectron2 itself: a random-initialised keypoint R-CNN of a narrow ResNet-50-FPN config in both
of detectron2's checkpoint layouts (``model_final.pkl``, ``model_final.pth``), three small
images and ``golden.json``, detectron2's ``DefaultPredictor`` outputs on them.
"""

from __future__ import annotations

import json
import shutil
from functools import cache
from pathlib import Path
from typing import Any

DATA = Path(__file__).parent / "data"
ARCH = "detectron2:keypoint_rcnn_R_50_FPN_3x"
BOX_TOL = 1e-3  # px
SCORE_TOL = 1e-4


@cache
def golden() -> dict[str, Any]:
    return json.loads((DATA / "golden.json").read_text())


def kwargs() -> dict[str, Any]:
    return dict(golden()["kwargs"])


def card_text(weights: str, kw: dict[str, Any] | None = None, extra: str = "") -> str:
    kw = kwargs() if kw is None else kw
    lines = "".join(f'"{k}" = {json.dumps(v)}\n' for k, v in kw.items())
    return (
        f'schema = 1\n{extra}\n[model]\nname = "d2-golden"\nversion = "0.1"\n'
        f'format = "detectron2"\nweights = "{weights}"\narchitecture = "{ARCH}"\n'
        f"[model.kwargs]\n{lines}"
    )


def make_card(
    folder: Path,
    layout: str = "pkl",
    kw: dict[str, Any] | None = None,
    extra: str = "",
    weights: Path | None = None,
) -> Path:
    """A card folder holding a copy of the golden checkpoint (or ``weights``)."""
    folder.mkdir(parents=True, exist_ok=True)
    src = weights or DATA / f"model_final.{layout}"
    if src.parent.resolve() != folder.resolve():
        shutil.copy(src, folder / src.name)
    path = folder / "kpmodel.toml"
    path.write_text(card_text(src.name, kw, extra))
    return path


def images():
    from pytest_kpmodel.data import decode_image

    return [decode_image(DATA / o["image"])[0].float() / 255 for o in golden()["outputs"]]


def assert_matches_golden(preds) -> None:
    import numpy as np

    outs = golden()["outputs"]
    assert len(preds) == len(outs)
    for p, ref in zip(preds, outs, strict=True):
        n = len(ref["scores"])
        assert len(p) == n, (ref["image"], len(p), n)
        assert p.labels.tolist() == ref["labels"]
        np.testing.assert_allclose(
            p.boxes.numpy(), np.array(ref["boxes"]).reshape(-1, 4), atol=BOX_TOL, rtol=0
        )
        np.testing.assert_allclose(p.scores.numpy(), ref["scores"], atol=SCORE_TOL, rtol=0)
        kps = np.array(ref["keypoints"]).reshape(n, -1, 3)
        np.testing.assert_allclose(p.keypoints[..., :2].numpy(), kps[..., :2], atol=BOX_TOL, rtol=0)
        np.testing.assert_allclose(p.keypoints[..., 2].numpy(), kps[..., 2], atol=SCORE_TOL, rtol=0)


def dataset(folder: Path) -> Path:
    """A COCO keypoint set of the three golden images, one person each."""
    from PIL import Image

    (folder / "images").mkdir(parents=True)
    images, anns = [], []
    for i, out in enumerate(golden()["outputs"], 1):
        shutil.copy(DATA / out["image"], folder / "images" / out["image"])
        w, h = Image.open(DATA / out["image"]).size
        x0, y0, bw, bh = w * 0.2, h * 0.2, w * 0.5, h * 0.6
        kps = []
        for k in range(17):
            kps += [x0 + bw * ((k * 7) % 10) / 10, y0 + bh * ((k * 3) % 10) / 10, 2]
        images.append({"id": i, "file_name": out["image"], "width": w, "height": h})
        anns.append(
            {
                "id": i, "image_id": i, "category_id": 1, "bbox": [x0, y0, bw, bh],
                "area": bw * bh * 0.6, "iscrowd": 0, "keypoints": kps, "num_keypoints": 17,
            }
        )  # fmt: skip
    path = folder / "annotations.json"
    from pytest_kpmodel.keypoints import COCO_NAMES

    cats = [{"id": 1, "name": "person", "keypoints": list(COCO_NAMES), "skeleton": []}]
    path.write_text(json.dumps({"images": images, "annotations": anns, "categories": cats}))
    return path
