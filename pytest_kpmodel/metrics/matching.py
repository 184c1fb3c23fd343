"""pycocotools' ``evaluateImg`` (greedy matching at every threshold), re-done exactly with numpy.

The engines give summary stats and accumulated precision; the analyses (per-keypoint AP,
PCK, error analysis, bootstrap) need what pycocotools keeps per image: which detection
matched which ground truth at each threshold, and which are ignored. Given a
:mod:`.layout` and the pair similarities of :mod:`.pairs`, :func:`match` computes that for
all images at once, reproducing ``evaluateImg`` operation for operation (same float64
arithmetic, same stable sorts), and :mod:`.accumulate` turns it into precision and recall as
``accumulate`` does; so the results equal pycocotools' bit for bit (``tests/metrics`` checks
this against pycocotools' ``evalImgs`` and ``eval['precision']``).

Order conventions (pycocotools'): ground truths of an image in annotation order, then stably
sorted non-ignored first; accumulation concatenates images in ascending image-id order and
stably sorts all detections by descending score.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .layout import Bucket, Layout


@dataclass(frozen=True)
class Matches:
    """evaluateImg's output for every image of a layout, flattened over detections."""

    layout: Layout
    thresholds: np.ndarray  # [T]
    gt_match: np.ndarray  # [T, N] position in layout.gt of the matched ground truth, -1 if none
    det_ignore: np.ndarray  # [T, N] bool (dtIgnore)
    gt_ignore: np.ndarray  # [M] bool (gtIgnore: ignore flag or area outside the range)
    score: np.ndarray  # [N]

    def tp_fp(self) -> tuple[np.ndarray, np.ndarray]:
        """True and false positives [T, N] as accumulate counts them (ignored: neither)."""
        matched = self.gt_match >= 0
        return matched & ~self.det_ignore, ~matched & ~self.det_ignore

    def npig_per_image(self) -> np.ndarray:
        lay = self.layout
        return np.bincount(lay.gt_img[~self.gt_ignore], minlength=lay.num_images).astype(np.int64)


def match(
    layout: Layout,
    sim: np.ndarray,
    gt_ignore: np.ndarray,
    gt_crowd: np.ndarray,
    det_outside: np.ndarray,
    thresholds: np.ndarray,
    score: np.ndarray,
) -> Matches:
    """evaluateImg's greedy matching for every image of ``layout`` at every threshold.

    ``sim[p]`` is the IoU/OKS of pair p; ``gt_ignore``/``gt_crowd`` are per layout gt
    (``gt_ignore`` includes the area range), ``det_outside`` per layout det (area range).
    """
    lay = layout
    t_count = len(thresholds)
    n = lay.num_dets
    gt_match = np.full((t_count, n), -1, dtype=np.int64)
    thr = np.minimum(np.asarray(thresholds, dtype=np.float64), 1 - 1e-10)

    # ground truths of each image: non-ignored first, stable (evaluateImg's gtind)
    m = len(lay.gt)
    order = np.lexsort((np.arange(m), gt_ignore, lay.gt_img))
    sorted_pos = np.empty(m, dtype=np.int64)
    sorted_pos[order] = np.arange(m)
    g_rank = sorted_pos - lay.g_start[lay.gt_img]
    for bucket in lay.buckets:
        _match_bucket(lay, bucket, sim, g_rank, gt_ignore, gt_crowd, thr, gt_match)
    matched = gt_match >= 0
    if len(gt_ignore):
        det_ignore = np.where(matched, gt_ignore[np.maximum(gt_match, 0)], det_outside[None, :])
    else:
        det_ignore = np.repeat(det_outside[None, :], t_count, axis=0)
    return Matches(
        layout=lay,
        thresholds=np.asarray(thresholds, dtype=np.float64),
        gt_match=gt_match,
        det_ignore=det_ignore,
        gt_ignore=gt_ignore,
        score=score,
    )


def _match_bucket(
    lay: Layout,
    b: Bucket,
    sim: np.ndarray,
    g_rank: np.ndarray,
    gt_ignore: np.ndarray,
    gt_crowd: np.ndarray,
    thr: np.ndarray,
    gt_match: np.ndarray,
) -> None:
    nb = int(b.active[0])
    dp = len(b.active)
    gp = b.gp
    t_count = len(thr)
    s = np.full((nb, dp, gp), -np.inf)
    s[b.pair_loc, b.pair_drank, g_rank[lay.pair_g[b.pair]]] = sim[b.pair]
    gr = g_rank[b.gt]
    ig = np.zeros((nb, gp), dtype=bool)
    crowd = np.zeros((nb, gp), dtype=bool)
    gpos = np.full((nb, gp), -1, dtype=np.int64)
    ig[b.gt_loc, gr] = gt_ignore[b.gt]
    crowd[b.gt_loc, gr] = gt_crowd[b.gt]
    gpos[b.gt_loc, gr] = b.gt
    avail = np.repeat((gpos >= 0)[:, None, :], t_count, axis=1)
    out = np.full((nb, t_count, dp), -1, dtype=np.int64)
    thr3 = thr[None, :, None]
    # a detection below the lowest threshold with every ground truth never matches
    reach = (s >= thr.min()).any(axis=2)  # [nb, dp]
    for r in range(dp):
        rows = np.flatnonzero(reach[: int(b.active[r]), r])
        if not len(rows):
            continue
        sr = s[rows, r, :][:, None, :]  # [n, 1, G]
        ok = avail[rows] & (sr >= thr3)  # [n, T, G]
        igr = ig[rows][:, None, :]
        reg = ok & ~igr
        key = np.where(reg, sr, -np.inf)
        has_reg = reg.any(axis=2, keepdims=True)
        if not has_reg.all():  # no regular gt to match: ignored gts are candidates
            key = np.where(has_reg, key, np.where(ok, sr, -np.inf))
        # the last gt reaching the best value wins (evaluateImg replaces on >=)
        flipped = key[:, :, ::-1]
        idx = np.argmax(flipped, axis=2)
        has = np.take_along_axis(flipped, idx[:, :, None], axis=2)[:, :, 0] > -np.inf
        if not has.any():
            continue
        mm = np.where(has, gp - 1 - idx, -1)
        out[rows, :, r] = mm
        ii, tt = np.nonzero(has)
        gg = mm[ii, tt]
        keep = ~crowd[rows[ii], gg]
        avail[rows[ii[keep]], tt[keep], gg[keep]] = False
    res = out[b.det_loc, :, b.det_rank]  # [nd, T]
    g_of = np.where(res >= 0, gpos[b.det_loc[:, None], np.maximum(res, 0)], -1)
    gt_match[:, b.det] = g_of.T
