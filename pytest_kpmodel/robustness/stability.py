"""Stability: how much a model's predictions move under one perturbation.

``measure`` runs the model on perturbed copies of a fixed sample of images, maps the predictions
back to the original frame (exact inverse of geometric perturbations, left/right swapped back
after a flip), matches them greedily by OKS to the clean predictions, and reports

- ``mean_oks``: mean over clean detections of the OKS of its match (0 when unmatched),
- ``recall``: fraction of clean detections matched with OKS >= ``oks_threshold``,
- ``spurious``: perturbed detections that match no clean one,

overall and per image. OKS uses the keypoint set's sigmas and each clean detection's box area;
only detections scoring >= ``score_threshold`` take part on either side, and only detections
with the same label are matched. Torch is imported lazily.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

    from pytest_kpmodel.adapters.base import KeypointModel, Prediction
    from pytest_kpmodel.keypoints import KeypointSet
    from pytest_kpmodel.robustness.perturbations import Compose, Perturbation


@dataclass(frozen=True)
class ImageStability:
    """One image: per clean detection, the OKS of its match (0.0 when it has none)."""

    index: int
    num_clean: int
    num_perturbed: int
    oks: tuple[float, ...]
    recall: float | None  # None when the image has no clean detection
    spurious: int

    @property
    def mean_oks(self) -> float | None:
        return sum(self.oks) / len(self.oks) if self.oks else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "num_clean": self.num_clean,
            "num_perturbed": self.num_perturbed,
            "mean_oks": self.mean_oks,
            "recall": self.recall,
            "spurious": self.spurious,
            "oks": list(self.oks),
        }


@dataclass
class StabilityResult:
    """Predictions under ``perturbation`` against the clean ones, over a sample of images.

    ``mean_oks`` and ``recall`` are pooled over all clean detections of the sample (None when
    there are none). ``str()`` names the perturbation with its reproducing parameters.
    """

    perturbation: Perturbation | Compose
    mean_oks: float | None
    recall: float | None
    num_clean: int
    spurious: int
    per_image: list[ImageStability]
    score_threshold: float
    oks_threshold: float
    saved: list[str] = field(default_factory=list)

    @property
    def num_images(self) -> int:
        return len(self.per_image)

    def worst(self, n: int = 5) -> list[ImageStability]:
        """The ``n`` images with the lowest mean OKS (images without detections last)."""
        ranked = sorted(
            self.per_image,
            key=lambda r: (r.mean_oks is None, r.mean_oks if r.mean_oks is not None else 0.0),
        )
        return ranked[:n]

    def to_dict(self) -> dict[str, Any]:
        return {
            "perturbation": repr(self.perturbation),
            "kind": self.perturbation.kind,
            "severity": self.perturbation.severity,
            "mean_oks": self.mean_oks,
            "recall": self.recall,
            "num_clean": self.num_clean,
            "spurious": self.spurious,
            "num_images": self.num_images,
            "score_threshold": self.score_threshold,
            "oks_threshold": self.oks_threshold,
            "per_image": [r.to_dict() for r in self.per_image],
            "saved": list(self.saved),
        }

    def __str__(self) -> str:
        def fmt(v: float | None) -> str:
            return "n/a" if v is None else f"{v:.3f}"

        worst = ", ".join(
            f"#{r.index}: {fmt(r.mean_oks)}" for r in self.worst(3) if r.mean_oks is not None
        )
        text = (
            f"stability under {self.perturbation!r}: mean OKS {fmt(self.mean_oks)}, "
            f"recall@OKS{self.oks_threshold:g} {fmt(self.recall)} of {self.num_clean} clean "
            f"detections in {self.num_images} images, {self.spurious} spurious "
            f"(score >= {self.score_threshold:g})"
        )
        if worst:
            text += f"; worst images {worst}"
        if self.saved:
            text += f"; renderings in {Path(self.saved[0]).parent}"
        return text


def fixed_sample(num_items: int, n: int, seed: int = 0) -> list[int]:
    """``n`` sorted indices out of ``num_items``, the same for the same arguments."""
    if n >= num_items:
        return list(range(num_items))
    return sorted(random.Random(seed).sample(range(num_items), n))


def _filtered(pred: Prediction, threshold: float) -> Prediction:
    from pytest_kpmodel.adapters.base import Prediction

    p = pred.cpu()
    keep = p.scores >= threshold
    return Prediction(p.boxes[keep], p.scores[keep], p.labels[keep], p.keypoints[keep])


def compare(
    clean: Prediction,
    perturbed: Prediction,
    sigmas: Sequence[float],
    oks_threshold: float = 0.5,
    index: int = 0,
) -> ImageStability:
    """Match ``perturbed`` (already in the clean frame) to ``clean`` by OKS, greedily."""
    from pytest_kpmodel.robustness.oks import box_area, greedy_match, oks_matrix

    sim = oks_matrix(clean.keypoints, box_area(clean.boxes), perturbed.keypoints, sigmas)
    if sim.numel():
        same = clean.labels.cpu()[:, None] == perturbed.labels.cpu()[None, :]
        sim = sim.masked_fill(~same, -1.0)
    pairs = greedy_match(sim, 0.0)
    oks = [0.0] * len(clean)
    for r, _, v in pairs:
        oks[r] = float(v)
    recall = (sum(v >= oks_threshold for v in oks) / len(oks)) if oks else None
    return ImageStability(
        index=index,
        num_clean=len(clean),
        num_perturbed=len(perturbed),
        oks=tuple(oks),
        recall=recall,
        spurious=len(perturbed) - len(pairs),
    )


def measure(
    model: KeypointModel,
    images: Sequence[torch.Tensor],
    clean_predictions: Sequence[Prediction],
    perturbation: Perturbation | Compose,
    keypoint_set: KeypointSet | None = None,
    score_threshold: float = 0.5,
    *,
    oks_threshold: float = 0.5,
    batch_size: int = 8,
    indices: Sequence[int] | None = None,
    save: str | Path | None = None,
    max_saved: int = 8,
) -> StabilityResult:
    """Predictions of ``model`` under ``perturbation`` compared with ``clean_predictions``.

    ``images`` are CHW floats in [0, 1] (moved to ``model.device``); ``indices`` are their
    positions in the data set (they select the perturbation's random streams; default 0..n-1).
    ``keypoint_set`` gives OKS sigmas and flip pairs (default COCO-17). With ``save`` (a folder),
    the ``max_saved`` least stable images are written as ``<index>.png`` (clean | perturbed,
    predictions and skeletons drawn) next to ``perturbation.txt`` holding the repr.
    """

    from pytest_kpmodel.keypoints import COCO17

    ks = keypoint_set or COCO17
    images = list(images)
    n = len(images)
    if len(clean_predictions) != n:
        raise ValueError(f"{len(clean_predictions)} clean predictions for {n} images")
    indices = list(range(n)) if indices is None else [int(i) for i in indices]
    device = getattr(model, "device", None)
    clean = [_filtered(p, score_threshold) for p in clean_predictions]
    per_image = []
    kept: dict[int, tuple[torch.Tensor, Prediction, Prediction]] = {}
    for start in range(0, n, max(1, batch_size)):
        sl = slice(start, min(n, start + batch_size))
        batch = [img if device is None else img.to(device) for img in images[sl]]
        perturbed = perturbation.apply(
            batch, predictions=clean[sl], keypoint_set=ks, indices=indices[sl]
        )
        raw = list(model.predict(perturbed.images))
        back = perturbed.map_back([p.cpu() for p in raw])
        for j, (c, b) in enumerate(zip(clean[sl], back, strict=True)):
            res = compare(
                c, _filtered(b, score_threshold), ks.sigmas, oks_threshold, indices[sl][j]
            )
            per_image.append(res)
            if save is not None:
                kept[start + j] = (perturbed.images[j].cpu(), raw[j].cpu(), b)
    all_oks = [v for r in per_image for v in r.oks]
    num_clean = len(all_oks)
    result = StabilityResult(
        perturbation=perturbation,
        mean_oks=(sum(all_oks) / num_clean) if num_clean else None,
        recall=(sum(v >= oks_threshold for v in all_oks) / num_clean) if num_clean else None,
        num_clean=num_clean,
        spurious=sum(r.spurious for r in per_image),
        per_image=per_image,
        score_threshold=score_threshold,
        oks_threshold=oks_threshold,
    )
    if save is not None:
        result.saved = _save(result, images, clean, kept, ks, save, max_saved, indices)
    return result


def _save(result, images, clean, kept, ks, save, max_saved, indices) -> list[str]:
    from pytest_kpmodel.robustness.draw import render_pair, save_pairs

    position = {idx: pos for pos, idx in enumerate(indices)}
    pairs = []
    for r in result.worst(max_saved):
        pos = position[r.index]
        pimg, raw, back = kept[pos]
        mean = "n/a" if r.mean_oks is None else f"{r.mean_oks:.3f}"
        title = (
            f"{result.perturbation!r}\nimage {r.index}: mean OKS {mean}, "
            f"{r.num_clean} clean / {r.num_perturbed} perturbed detections "
            f"(green: clean, red: perturbed)"
        )
        img = render_pair(
            images[pos], clean[pos], pimg, raw, back, ks, title, result.score_threshold
        )
        pairs.append((f"{r.index:05d}", img))
    return save_pairs(save, pairs, repr(result.perturbation))
