"""Sample predictions drawn on their images, worst images first, for the report's gallery.

    arts = render_gallery(images, gt, preds, card.keypoints, report_dir, n=8)

* ``images``: a sequence of images (uint8 or float [0, 1] CHW tensors, HWC numpy arrays or PIL
  images), or a callable ``index -> image`` (only the ``n`` shown images are then decoded).
* ``gt``: per image, a list of COCO annotation dicts (``bbox`` [x, y, w, h], ``keypoints``
  [x, y, v] * K, ``area``, ``iscrowd``).
* ``preds``: per image, a ``Prediction`` (or any object/dict with ``boxes`` xyxy [N, 4],
  ``scores`` [N], ``keypoints`` [N, K, 3]).

Ranking ("worst first"): per image, predictions scoring >= ``score_threshold`` are matched
greedily (by descending score) to the non-crowd ground truths with labelled keypoints, by COCO
OKS with the keypoint set's sigmas; a ground truth counts as found at OKS >= ``oks_threshold``
and a kept detection that finds none is a false positive. Images are ordered by recall (found /
ground truths), then by mean OKS (per ground truth, the best OKS of any kept detection), then
by false positives (more first); images without ground truth come last, most false positives
first.

Drawing: ground truth in green (thin lines, hollow keypoints), predictions with an orange box
and the card's skeleton: edges touching a ``left*`` keypoint (and no ``right*`` one) blue,
``right*`` ones red, the rest yellow (a left/right swap shows as crossed colours). Images are scaled to at most ``max_side`` pixels (small ones up to
``min_side``); ``meta.scale`` records the factor.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from ..metrics.oks import oks
from .assets import save_image

GT = (40, 220, 80)
PRED_BOX = (255, 140, 0)
LEFT = (40, 120, 255)
RIGHT = (255, 50, 50)
CENTRE = (255, 210, 0)


def _np(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().to("cpu").float().numpy()
    return np.asarray(x, dtype=np.float64)


def _field(pred: Any, name: str) -> Any:
    return pred[name] if isinstance(pred, Mapping) else getattr(pred, name)


def prediction_arrays(pred: Any, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(boxes [N, 4] xyxy, scores [N], keypoints [N, K, 3]) as float numpy arrays."""
    if pred is None:
        return np.zeros((0, 4)), np.zeros((0,)), np.zeros((0, k, 3))
    boxes = _np(_field(pred, "boxes")).reshape(-1, 4)
    scores = _np(_field(pred, "scores")).reshape(-1)
    kps = _np(_field(pred, "keypoints"))
    kps = kps.reshape(len(boxes), -1, 3) if kps.size else np.zeros((len(boxes), k, 3))
    return boxes, scores, kps


def to_pil(image: Any) -> Image.Image:
    """uint8/float CHW tensor, HWC/CHW numpy array or PIL image -> RGB PIL image."""
    if isinstance(image, Image.Image):
        return image.convert("RGB")
    is_float = False
    if hasattr(image, "detach"):
        t = image.detach().to("cpu")
        is_float = t.is_floating_point()
        arr = t.float().numpy() if is_float else t.numpy()
    else:
        arr = np.asarray(image)
        is_float = arr.dtype.kind == "f"
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3:
        raise ValueError(f"an image must have 2 or 3 dimensions, got shape {tuple(arr.shape)}")
    if arr.shape[0] in (1, 3, 4) and arr.shape[-1] not in (1, 3, 4):
        arr = np.transpose(arr, (1, 2, 0))  # CHW -> HWC
    elif arr.shape[0] in (1, 3, 4) and arr.shape[-1] in (1, 3, 4) and hasattr(image, "detach"):
        arr = np.transpose(arr, (1, 2, 0))  # tensors are CHW
    if is_float:
        arr = np.clip(arr * 255.0, 0, 255).round()
    arr = arr.astype(np.uint8)
    if arr.shape[-1] == 1:
        arr = np.repeat(arr, 3, axis=-1)
    return Image.fromarray(np.ascontiguousarray(arr[..., :3]), mode="RGB")


# -- ranking ---------------------------------------------------------------------------------------
def _gt_arrays(anns: Sequence[Mapping[str, Any]], k: int):
    """Scored ground truths (non-crowd, labelled keypoints): keypoints [G, K, 3], areas [G]."""
    kps, areas = [], []
    for a in anns:
        kp = np.asarray(a.get("keypoints") or [], dtype=np.float64)
        if a.get("iscrowd") or kp.size != 3 * k:
            continue
        kp = kp.reshape(k, 3)
        if not (kp[:, 2] > 0).any():
            continue
        area = a.get("area")
        if not area:
            x, y, w, h = (float(v) for v in a.get("bbox", (0, 0, 0, 0)))
            area = w * h * 0.53
        kps.append(kp)
        areas.append(float(area))
    return np.asarray(kps).reshape(-1, k, 3), np.asarray(areas, dtype=np.float64)


def image_stats(
    anns: Sequence[Mapping[str, Any]],
    pred: Any,
    sigmas: Sequence[float],
    score_threshold: float = 0.5,
    oks_threshold: float = 0.5,
) -> dict[str, Any]:
    """Found / missed ground truths, false positives, recall and mean OKS for one image."""
    sig = np.asarray(sigmas, dtype=np.float64)
    k = len(sig)
    gkp, areas = _gt_arrays(anns, k)
    _, scores, dkp = prediction_arrays(pred, k)
    keep = np.flatnonzero(scores >= score_threshold)
    keep = keep[np.argsort(-scores[keep], kind="stable")]
    best = np.zeros(len(gkp))  # per ground truth: the best OKS any kept detection reaches
    taken = np.zeros(len(gkp), dtype=bool)
    matched_dets = 0
    if dkp.shape[1] == k:
        for d in keep:
            values = list(oks(dkp[d], gkp, areas, sig, gkp[:, :, 2] > 0))  # per ground truth
            best = np.maximum(best, values) if values else best
            cand = [(v, g) for g, v in enumerate(values) if not taken[g]]
            if not cand:
                continue
            value, g = max(cand)
            if value >= oks_threshold:
                taken[g] = True
                matched_dets += 1
    n = len(gkp)
    found = int(taken.sum())
    return {
        "gt": n,
        "found": found,
        "missed": n - found,
        "detections": len(keep),
        "false_positives": len(keep) - matched_dets,
        "recall": found / n if n else None,
        "mean_oks": float(best.mean()) if n else None,
    }


def rank(stats: Sequence[Mapping[str, Any]]) -> list[int]:
    """Indices of ``stats`` worst first (see the module docstring)."""

    def key(i: int):
        s = stats[i]
        if s["recall"] is None:
            return (1, 0.0, 0.0, -s["false_positives"], i)
        return (0, s["recall"], s["mean_oks"], -s["false_positives"], i)

    return sorted(range(len(stats)), key=key)


# -- drawing ---------------------------------------------------------------------------------------
def _side(name: str) -> str:
    n = name.lower()
    if n.startswith(("left", "l_", "l-")):
        return "left"
    if n.startswith(("right", "r_", "r-")):
        return "right"
    return "centre"


def edge_colour(names: Sequence[str], a: int, b: int) -> tuple[int, int, int]:
    sa = _side(names[a]) if a < len(names) else "centre"
    sb = _side(names[b]) if b < len(names) else "centre"
    sides = {sa, sb}
    if "left" in sides and "right" not in sides:
        return LEFT
    if "right" in sides and "left" not in sides:
        return RIGHT
    return CENTRE


def point_colour(name: str) -> tuple[int, int, int]:
    return {"left": LEFT, "right": RIGHT}.get(_side(name), CENTRE)


def draw(
    image: Image.Image,
    anns: Sequence[Mapping[str, Any]],
    pred: Any,
    keypoint_set: Any,
    score_threshold: float = 0.5,
    scale: float = 1.0,
) -> Image.Image:
    """``image`` scaled by ``scale`` with ground truth and predictions drawn on it."""
    names = list(keypoint_set.names)
    k = len(names)
    skeleton = [(int(a), int(b)) for a, b in keypoint_set.skeleton]
    if scale != 1.0:
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        image = image.resize(size, Image.Resampling.BILINEAR)
    else:
        image = image.copy()
    d = ImageDraw.Draw(image)
    lw = max(2, round(max(image.size) / 250))
    r = max(2.5, max(image.size) / 160)
    for a in anns:
        if a.get("bbox") is not None and len(a["bbox"]) == 4:
            x, y, w, h = (float(v) * scale for v in a["bbox"])
            d.rectangle([x, y, x + w, y + h], outline=GT, width=max(1, lw - 1))
        kp = np.asarray(a.get("keypoints") or [], dtype=np.float64)
        if kp.size != 3 * k:
            continue
        kp = kp.reshape(k, 3)
        for i, j in skeleton:
            if i < k and j < k and kp[i, 2] > 0 and kp[j, 2] > 0:
                d.line([tuple(kp[i, :2] * scale), tuple(kp[j, :2] * scale)], fill=GT, width=1)
        for x, y, v in kp:
            if v > 0:
                x, y = x * scale, y * scale
                d.ellipse([x - r, y - r, x + r, y + r], outline=GT, width=1)
    boxes, scores, kps = prediction_arrays(pred, k)
    order = np.argsort(scores, kind="stable")  # the best on top
    for n in order:
        if scores[n] < score_threshold:
            continue
        d.rectangle(list(boxes[n] * scale), outline=PRED_BOX, width=lw)
        pts = kps[n, :, :2] * scale
        for i, j in skeleton:
            if i < len(pts) and j < len(pts):
                d.line([tuple(pts[i]), tuple(pts[j])], fill=edge_colour(names, i, j), width=lw)
        for i, (x, y) in enumerate(pts):
            c = point_colour(names[i]) if i < k else CENTRE
            d.ellipse([x - r, y - r, x + r, y + r], fill=c, outline=(0, 0, 0))
        x0, y0 = boxes[n, 0] * scale, boxes[n, 1] * scale
        d.text((x0 + 2, max(0.0, y0 - 11)), f"{scores[n]:.2f}", fill=PRED_BOX)
    return image


def _fit_scale(width: int, height: int, max_side: int, min_side: int) -> float:
    side = max(width, height, 1)
    if side > max_side:
        return max_side / side
    if side < min_side:
        return min_side / side
    return 1.0


def _title(image_id: Any, s: Mapping[str, Any]) -> str:
    head = f"image {image_id}"
    if s["gt"]:
        body = f"{s['found']}/{s['gt']} people found, mean OKS {s['mean_oks']:.2f}"
    else:
        body = "no ground truth"
    return f"{head}: {body}, {s['false_positives']} false positive(s)"


def render_gallery(
    images: Sequence[Any] | Callable[[int], Any],
    gt: Sequence[Sequence[Mapping[str, Any]]],
    preds: Sequence[Any],
    keypoint_set: Any,
    folder: str | Path,
    n: int = 8,
    *,
    image_ids: Sequence[Any] | None = None,
    score_threshold: float = 0.5,
    oks_threshold: float = 0.5,
    max_side: int = 512,
    min_side: int = 192,
    fmt: str = "jpeg",
) -> list[dict[str, Any]]:
    """Draw the ``n`` worst images into ``folder/images/gallery-*``; their artifact entries,
    worst first (``kind="gallery"``, ``meta``: image_id, rank, the stats of
    :func:`image_stats`, score/OKS thresholds, scale)."""
    if len(gt) != len(preds):
        raise ValueError(f"gallery: {len(gt)} ground-truth lists for {len(preds)} predictions")
    folder = Path(folder)
    sigmas = list(keypoint_set.sigmas)
    stats = [
        image_stats(a, p, sigmas, score_threshold, oks_threshold)
        for a, p in zip(gt, preds, strict=True)
    ]
    load = images if callable(images) else images.__getitem__
    out = []
    for rank_no, i in enumerate(rank(stats)[: max(0, n)]):
        img = to_pil(load(i))
        scale = _fit_scale(img.width, img.height, max_side, min_side)
        drawn = draw(img, gt[i], preds[i], keypoint_set, score_threshold, scale)
        image_id = image_ids[i] if image_ids is not None else i
        meta = {
            "image_id": image_id,
            "index": i,
            "rank": rank_no + 1,
            **stats[i],
            "score_threshold": score_threshold,
            "oks_threshold": oks_threshold,
            "scale": scale,
        }
        out.append(
            save_image(
                drawn,
                folder,
                f"gallery-{rank_no}",
                "gallery",
                _title(image_id, stats[i]),
                meta,
                fmt,
            )  # fmt: skip
        )
    return out
