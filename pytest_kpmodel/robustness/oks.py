"""Object keypoint similarity between detections, and greedy matching by it.

OKS is pycocotools' ``computeOks``, from ``metrics.oks`` (where the formula is written once):
``exp(-d^2 / (2 * area * (2 sigma)^2))`` averaged over the reference's keypoints, where the
reference plays COCO's ground truth. Here the reference is usually a clean prediction, whose
area is its box area (``w * h``) and whose keypoints all count (a prediction has no "not
labelled" keypoints).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..metrics.oks import oks


def box_area(boxes: torch.Tensor) -> torch.Tensor:
    wh = (boxes[:, 2:4] - boxes[:, 0:2]).clamp_min(0)
    return wh[:, 0] * wh[:, 1]


def box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``[N, M]`` IoU of xyxy boxes."""
    a = a.to(torch.float64)
    b = b.to(torch.float64)
    lt = torch.maximum(a[:, None, :2], b[None, :, :2])
    rb = torch.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = (rb - lt).clamp_min(0).prod(-1)
    union = box_area(a)[:, None] + box_area(b)[None, :] - inter
    return torch.where(union > 0, inter / union, torch.zeros_like(inter))


def oks_matrix(
    ref_keypoints: torch.Tensor,
    ref_areas: torch.Tensor,
    keypoints: torch.Tensor,
    sigmas: Sequence[float] | torch.Tensor,
    ref_visible: torch.Tensor | None = None,
) -> torch.Tensor:
    """``[N_ref, M]`` OKS of ``keypoints`` [M, K, 2+] against ``ref_keypoints`` [N_ref, K, 2+].

    ``ref_visible`` [N_ref, K] (bool) limits the average to those reference keypoints (COCO's
    v > 0); default: all of them.
    """
    n, m = ref_keypoints.shape[0], keypoints.shape[0]
    if n == 0 or m == 0:
        return torch.zeros((n, m), dtype=torch.float64)
    ref = ref_keypoints[..., :2].detach().to("cpu", torch.float64).numpy()
    det = keypoints[..., :2].detach().to("cpu", torch.float64).numpy()
    sig = torch.as_tensor(sigmas, dtype=torch.float64).numpy()
    if sig.size != ref.shape[1]:
        raise ValueError(f"{sig.size} OKS sigmas for {ref.shape[1]} keypoints")
    area = ref_areas.detach().to("cpu", torch.float64).numpy().reshape(n, 1)
    vis = None if ref_visible is None else ref_visible.to("cpu").bool().numpy().reshape(n, 1, -1)
    return torch.from_numpy(oks(det[None], ref[:, None], area, sig, vis))


def greedy_match(
    similarity: torch.Tensor, min_similarity: float = 0.0
) -> list[tuple[int, int, float]]:
    """Pairs ``(ref, det, similarity)`` taken by decreasing similarity, each row and column once.

    Pairs at or below ``min_similarity`` are never taken (entries < 0 mark forbidden pairs).
    """
    n, m = similarity.shape
    if n == 0 or m == 0:
        return []
    flat = similarity.flatten().to(torch.float64)
    order = torch.argsort(flat, descending=True, stable=True).tolist()
    values = flat.tolist()
    used_r: set[int] = set()
    used_c: set[int] = set()
    pairs: list[tuple[int, int, float]] = []
    for k in order:
        v = values[k]
        if v <= min_similarity:
            break
        r, c = divmod(k, m)
        if r in used_r or c in used_c:
            continue
        used_r.add(r)
        used_c.add(c)
        pairs.append((r, c, v))
        if len(pairs) == min(n, m):
            break
    return pairs
