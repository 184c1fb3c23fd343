"""pycocotools' ``accumulate`` for one category, area range and maxDets, on numpy arrays."""

from __future__ import annotations

import numpy as np

from .params import EPS


def accumulate_sorted(
    tp: np.ndarray,
    fp: np.ndarray,
    npig: float,
    rec_thrs: np.ndarray,
    weights: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """pycocotools' accumulate for one category/area/maxDet: precision [T, R], recall [T].

    ``tp``, ``fp`` [T, N] are in accumulation order: images ascending, then every detection
    stably sorted by descending score (``np.argsort(-score, kind="mergesort")``);
    ``weights`` (per detection) count a detection that many times (bootstrap).
    """
    t_count, nd = tp.shape
    r_count = len(rec_thrs)
    if weights is None:
        tp_sum = np.cumsum(tp, axis=1).astype(float)
        fp_sum = np.cumsum(fp, axis=1).astype(float)
    else:
        tp_sum = np.cumsum(tp * weights, axis=1, dtype=float)
        fp_sum = np.cumsum(fp * weights, axis=1, dtype=float)
    precision = np.zeros((t_count, r_count))
    recall = np.zeros(t_count)
    if nd == 0:
        return precision, recall
    rc = tp_sum / npig
    pr = tp_sum / (fp_sum + tp_sum + EPS)
    env = np.maximum.accumulate(pr[:, ::-1], axis=1)[:, ::-1]
    recall[:] = rc[:, -1]
    for t in range(t_count):
        inds = np.searchsorted(rc[t], rec_thrs, side="left")
        inside = inds < nd
        precision[t, inside] = env[t, inds[inside]]
    return precision, recall
