"""Renderings for humans: an image with predictions (boxes, keypoints, skeleton) drawn on it."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from PIL import Image, ImageDraw

if TYPE_CHECKING:
    from pytest_kpmodel.adapters.base import Prediction
    from pytest_kpmodel.keypoints import KeypointSet

CLEAN = (40, 200, 80)
PERTURBED = (235, 60, 50)


def to_pil(image: torch.Tensor) -> Image.Image:
    """CHW float in [0, 1] (1 or 3 channels) -> RGB PIL image."""
    x = image.detach().to("cpu", torch.float32).clamp(0, 1)
    if x.shape[0] == 1:
        x = x.expand(3, -1, -1)
    arr = (x[:3] * 255).round().to(torch.uint8).permute(1, 2, 0).contiguous().numpy()
    return Image.fromarray(arr, mode="RGB")


def draw_prediction(
    img: Image.Image,
    pred: Prediction,
    keypoint_set: KeypointSet,
    colour: tuple[int, int, int],
    score_threshold: float = 0.0,
    scale: float = 1.0,
) -> None:
    """Draw boxes, skeleton lines and keypoints of detections scoring >= ``score_threshold``."""
    d = ImageDraw.Draw(img)
    keep = (pred.scores >= score_threshold).cpu()
    boxes = pred.boxes.detach().cpu()[keep] * scale
    kps = pred.keypoints.detach().cpu()[keep]
    r = max(1.5, 0.006 * max(img.size))
    for box, kp in zip(boxes.tolist(), kps, strict=True):
        d.rectangle(box, outline=colour, width=max(1, int(r / 2)))
        pts = (kp[:, :2] * scale).tolist()
        for a, b in keypoint_set.skeleton:
            if a < len(pts) and b < len(pts):
                d.line([tuple(pts[a]), tuple(pts[b])], fill=colour, width=max(1, int(r / 2)))
        for x, y in pts:
            d.ellipse([x - r, y - r, x + r, y + r], outline=colour, fill=colour)


def render_pair(
    clean_image: torch.Tensor,
    clean_pred: Prediction,
    perturbed_image: torch.Tensor,
    perturbed_pred: Prediction,
    mapped_back: Prediction | None,
    keypoint_set: KeypointSet,
    title: str,
    score_threshold: float = 0.0,
) -> Image.Image:
    """Left: clean image, clean (green) and mapped-back perturbed (red) predictions.
    Right: perturbed image with its own predictions (red). A caption holds ``title``."""
    left = to_pil(clean_image)
    right = to_pil(perturbed_image)
    draw_prediction(left, clean_pred, keypoint_set, CLEAN, score_threshold)
    if mapped_back is not None:
        draw_prediction(left, mapped_back, keypoint_set, PERTURBED, score_threshold)
    draw_prediction(right, perturbed_pred, keypoint_set, PERTURBED, score_threshold)
    width = left.width + right.width + 8
    chars = max(40, width // 7)
    lines: list[str] = []
    for paragraph in title.splitlines():
        lines.extend(textwrap.wrap(paragraph, chars) or [""])
    caption_h = 14 * len(lines) + 8
    canvas = Image.new("RGB", (width, max(left.height, right.height) + caption_h), "white")
    canvas.paste(left, (0, 0))
    canvas.paste(right, (left.width + 8, 0))
    d = ImageDraw.Draw(canvas)
    y = max(left.height, right.height) + 4
    for line in lines:
        d.text((4, y), line, fill=(0, 0, 0))
        y += 14
    return canvas


def save_pairs(
    directory: str | Path, pairs: Sequence[tuple[str, Image.Image]], note: str
) -> list[str]:
    """Write ``name.png`` files and ``perturbation.txt`` (``note``) into ``directory``."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    (out / "perturbation.txt").write_text(note + "\n", encoding="utf-8")
    paths = []
    for name, img in pairs:
        path = out / f"{name}.png"
        img.save(path)
        paths.append(str(path))
    return paths
