"""Flip consistency: mean OKS between predictions on images and on their mirror images.

:func:`flip_results` maps results on horizontally mirrored images back to the originals;
:func:`flip_consistency` pairs them with the predictions on the originals and averages the OKS.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import DatasetError
from ..keypoints import COCO17, COCO_SIGMAS
from .messages import show
from .oks import keypoint_exponent, mean_exp


def flip_results(
    results: Sequence[Mapping[str, Any]], widths: Mapping[int, float], flip_index: Sequence[int]
) -> list[dict[str, Any]]:
    """Map results on horizontally mirrored images back to the original images.

    x -> width - x for keypoints (continuous pixel coordinates, as torchvision's flip of
    keypoints), a box [x, y, w, h] -> [width - x - w, y, w, h], and keypoint k takes the
    mirrored image's keypoint ``flip_index[k]`` (left and right swap back).
    """
    perm = np.asarray(list(flip_index), dtype=np.int64)
    out = []
    for i, r in enumerate(results):
        try:
            width = float(widths[r["image_id"]])
        except KeyError:
            raise DatasetError(
                f"flipped result #{i}: no width for image_id {show(r.get('image_id'))}"
            ) from None
        kp = np.asarray(r["keypoints"], dtype=np.float64)
        if kp.size != 3 * len(perm):
            raise DatasetError(
                f"flipped result #{i}: {kp.size} keypoint values for {len(perm)} keypoints"
            )
        kp = kp.reshape(-1, 3)[perm].copy()
        kp[:, 0] = width - kp[:, 0]
        x, y, w, h = (float(v) for v in r["bbox"])
        out.append({**r, "bbox": [width - x - w, y, w, h], "keypoints": kp.reshape(-1).tolist()})
    return out


@dataclass(frozen=True)
class FlipConsistency:
    mean_oks: float | None  # over paired detections
    per_keypoint: tuple[float | None, ...]  # mean keypoint similarity per keypoint
    names: tuple[str, ...]
    pairs: int
    unpaired: int  # original detections (score >= min_score) without a mirrored partner
    unpaired_flipped: int
    min_score: float

    def to_json(self) -> dict[str, Any]:
        return {
            "mean_oks": self.mean_oks,
            "per_keypoint": dict(zip(self.names, self.per_keypoint, strict=True)),
            "pairs": self.pairs,
            "unpaired": self.unpaired,
            "unpaired_flipped": self.unpaired_flipped,
            "min_score": self.min_score,
        }


def flip_consistency(
    results: Sequence[Mapping[str, Any]],
    flipped_results: Sequence[Mapping[str, Any]],
    *,
    widths: Mapping[int, float] | None = None,
    flip_index: Sequence[int],
    sigmas: Sequence[float] = COCO_SIGMAS,
    names: Sequence[str] | None = None,
    min_score: float = 0.5,
    mapped_back: bool = False,
) -> FlipConsistency:
    """Mean OKS between predictions on images and on their mirror images, mapped back.

    ``flipped_results`` are predictions on the horizontally mirrored images, in the mirrored
    images' coordinates (mapped back here with ``widths`` and ``flip_index``), or already
    mapped back (``mapped_back=True``). Per image and category, detections with score >=
    ``min_score`` are paired greedily: in descending score order each original detection takes
    the free mirrored detection with the highest OKS. The OKS of a pair treats the original
    detection as the reference: every keypoint counts, with the original box's w*h as the area.
    ``mean_oks`` is 1.0 for a perfectly flip-equivariant model.
    """
    sig = np.asarray([float(s) for s in sigmas], dtype=np.float64)
    k_count = len(sig)
    if len(flip_index) != k_count:
        raise DatasetError(f"flip index has {len(flip_index)} entries for {k_count} sigmas")
    if not mapped_back:
        if widths is None:
            raise DatasetError(
                "flip_consistency needs the image widths to map mirrored results back"
            )
        flipped_results = flip_results(flipped_results, widths, flip_index)

    a_groups, b_groups = _by_image(results, min_score), _by_image(flipped_results, min_score)
    pair_oks: list[float] = []
    ks_rows: list[np.ndarray] = []
    unpaired = 0
    unpaired_b = sum(len(v) for k, v in b_groups.items() if k not in a_groups)
    for key, a_list in a_groups.items():
        b_list = b_groups.get(key, [])
        if not b_list:
            unpaired += len(a_list)
            continue
        oks, ks = _pairs(a_list, b_list, sig)
        free = np.ones(len(b_list), dtype=bool)
        for i in range(len(a_list)):
            if not free.any():
                unpaired += len(a_list) - i
                break
            j = int(np.argmax(np.where(free, oks[i], -np.inf)))
            free[j] = False
            pair_oks.append(float(oks[i, j]))
            ks_rows.append(ks[i, j])
        unpaired_b += int(free.sum())
    per_k: tuple[float | None, ...]
    if ks_rows:
        per_k = tuple(float(v) for v in np.mean(np.stack(ks_rows), axis=0))
    else:
        per_k = (None,) * k_count
    return FlipConsistency(
        mean_oks=float(np.mean(pair_oks)) if pair_oks else None,
        per_keypoint=per_k,
        names=tuple(names) if names is not None else _default_names(k_count),
        pairs=len(pair_oks),
        unpaired=unpaired,
        unpaired_flipped=unpaired_b,
        min_score=float(min_score),
    )


Results = Sequence[Mapping[str, Any]]


def _by_image(results: Results, min_score: float) -> dict[tuple[int, int], list[Mapping[str, Any]]]:
    """Results with score >= ``min_score`` per (image, category), highest score first."""
    g: dict[tuple[int, int], list[Mapping[str, Any]]] = {}
    for r in results:
        if float(r["score"]) >= min_score:
            g.setdefault((int(r["image_id"]), int(r["category_id"])), []).append(r)
    for v in g.values():
        v.sort(key=lambda r: -float(r["score"]))  # stable: ties keep input order
    return g


def _pairs(originals: Results, mirrored: Results, sigmas: np.ndarray) -> tuple[np.ndarray, ...]:
    """OKS [A, B] and keypoint similarities [A, B, K] of every (original, mirrored) pair; the
    original is the reference: every keypoint counts, its box's w*h is the area."""
    k = len(sigmas)
    ak = np.asarray([r["keypoints"] for r in originals], dtype=np.float64)
    ak = ak.reshape(len(originals), k, 3)
    bk = np.asarray([r["keypoints"] for r in mirrored], dtype=np.float64)
    bk = bk.reshape(len(mirrored), k, 3)
    area = np.asarray([float(r["bbox"][2]) * float(r["bbox"][3]) for r in originals])
    e = keypoint_exponent(bk[None], ak[:, None], area[:, None], sigmas)
    return mean_exp(e), np.exp(-e)


def _default_names(k: int) -> tuple[str, ...]:
    return COCO17.names if k == COCO17.num_keypoints else tuple(f"kp{i}" for i in range(k))


def image_widths(gt: Mapping[str, Any]) -> dict[int, float]:
    """``{image id: width}`` from a COCO ground-truth dict (for :func:`flip_consistency`)."""
    try:
        return {int(im["id"]): float(im["width"]) for im in gt["images"]}
    except (KeyError, TypeError, ValueError) as exc:
        raise DatasetError(
            f"ground truth images need integer 'id' and numeric 'width' ({exc})"
        ) from None
