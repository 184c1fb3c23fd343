"""Object keypoint similarity (OKS), written once: pycocotools' ``computeOks``, float op for float op.

For keypoint k of a detection against a ground truth (or any reference) with area A::

    e_k = (dx_k^2 + dy_k^2) / (2 sigma_k)^2 / (A + eps) / 2        (eps = np.spacing(1))
    OKS = sum of exp(-e_k) over the reference's labelled keypoints / their count

computed in float64 in pycocotools' order of operations, so the results equal pycocotools'
bit for bit (``tests/metrics``). A ground truth with no labelled keypoint is computeOks' other
branch: the offsets are the distances to its box doubled on every side, over every keypoint.

Every OKS in the project comes from here: the metrics (per pair, per keypoint, flip
consistency), the report's gallery and ``robustness.oks`` (stability, parity).
Arrays broadcast: keypoints are ``[..., K, 2+]`` (x, y, ...), areas ``[...]``, boxes
``[..., 4]`` (x, y, w, h), sigmas ``[K]``.
"""

from __future__ import annotations

import numpy as np

from .params import EPS


def exponent(dx: np.ndarray, dy: np.ndarray, area: np.ndarray, sigmas: np.ndarray) -> np.ndarray:
    """``e`` [..., K] from the offsets ``dx``, ``dy`` [..., K] and the reference's ``area``.

    Works in place: float64 ``dx`` and ``dy`` must be arrays of the caller's own (they are
    squared; ``dx`` becomes the result), which keeps the memory of large pair tables at one
    array; others are converted first.
    """
    dx, dy = np.asarray(dx, dtype=np.float64), np.asarray(dy, dtype=np.float64)
    sigmas = np.asarray(sigmas, dtype=np.float64)
    np.square(dx, out=dx)
    np.square(dy, out=dy)
    dx += dy
    dx /= (sigmas * 2) ** 2
    dx /= np.asarray(area, dtype=np.float64)[..., None] + EPS
    dx /= 2
    return dx


def keypoint_exponent(
    det: np.ndarray, ref: np.ndarray, area: np.ndarray, sigmas: np.ndarray
) -> np.ndarray:
    """``e`` of the keypoints ``det`` against the reference keypoints ``ref``."""
    return exponent(det[..., 0] - ref[..., 0], det[..., 1] - ref[..., 1], area, sigmas)


def box_offsets(x: np.ndarray, y: np.ndarray, box: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """computeOks' offsets of points ``x``, ``y`` [..., K] from ``box`` [..., 4] doubled on
    every side (0 inside), for a ground truth without labelled keypoints."""
    bx, by, bw, bh = (box[..., i, None] for i in range(4))
    dx = np.maximum(0.0, (bx - bw) - x) + np.maximum(0.0, x - (bx + bw * 2))
    dy = np.maximum(0.0, (by - bh) - y) + np.maximum(0.0, y - (by + bh * 2))
    return dx, dy


def box_exponent(
    det: np.ndarray, box: np.ndarray, area: np.ndarray, sigmas: np.ndarray
) -> np.ndarray:
    """``e`` of the keypoints ``det`` against a ground truth without labelled keypoints."""
    return exponent(*box_offsets(det[..., 0], det[..., 1], box), area, sigmas)


def mean_exp(e: np.ndarray, use: np.ndarray | None = None) -> np.ndarray:
    """OKS [...] from ``e`` [..., K]: ``np.sum(np.exp(-e[use])) / use.sum()`` per row, in
    numpy's own summation order (computeOks'); ``use`` [..., K] (bool) marks the labelled
    keypoints, default all. A row with none scores 0."""
    if use is None:
        return np.exp(-e).sum(axis=-1) / e.shape[-1]
    k = e.shape[-1]
    flat_e = e.reshape(-1, k)
    flat_use = np.broadcast_to(use, e.shape).reshape(-1, k)
    out = np.zeros(len(flat_e))
    n_use = flat_use.sum(axis=1)
    ex = np.exp(-flat_e)
    for n in np.unique(n_use):
        if n == 0:
            continue
        rows = np.flatnonzero(n_use == n)
        vals = ex[rows][flat_use[rows]].reshape(len(rows), int(n))
        out[rows] = vals.sum(axis=1) / int(n)
    return out.reshape(e.shape[:-1])


def oks(
    det: np.ndarray,
    ref: np.ndarray,
    area: np.ndarray,
    sigmas: np.ndarray,
    labelled: np.ndarray | None = None,
) -> np.ndarray:
    """OKS [...] of the keypoints ``det`` against ``ref`` over the ``labelled`` [..., K]
    reference keypoints (default: all; a reference with none labelled scores 0 here, where
    computeOks would measure the distance to the box: see :func:`box_exponent`)."""
    return mean_exp(keypoint_exponent(det, ref, area, sigmas), labelled)
