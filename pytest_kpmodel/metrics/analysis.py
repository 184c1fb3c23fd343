"""Keypoint analyses on top of the exact per-image matching: per keypoint, PCK, error types.

* :func:`per_keypoint_ap` - COCO keypoint AP with one keypoint at a time (definition below).
* :func:`matched_keypoint_stats` - per-keypoint OKS and PCK over the detections the standard
  keypoint evaluation matches (OKS >= 0.5, area all, maxDets 20, non-ignored ground truth).
* :func:`keypoint_errors` - Ronchi & Perona (2017) / coco-analyze keypoint error types.

Per-keypoint AP of keypoint k: the standard COCO keypoint AP (OKS thresholds .50:.05:.95,
area all, maxDets 20) computed as if every ground truth carried keypoint k only, so the OKS
of a detection is ``exp(-d_k^2 / (2 * area * (2 * sigma_k)^2))``. Ground truths without
keypoint k labelled then have zero keypoints and become ignore regions, exactly as
pycocotools treats ``num_keypoints == 0``; crowds stay ignore regions. This equals
pycocotools run on ground truth masked to keypoint k (checked in ``tests/metrics``). A single
point is more ambiguous than a pose: where people overlap, a detection can match a neighbour
whose keypoint k lies close to its own, so even perfect poses can score a per-keypoint AP
slightly below 1.

Keypoint error analysis (coco-analyze's ``_find_kpt_errors``): detections are matched to
ground truth at OKS 0.1 over area [32^2, 1e10] with maxDets 20 (coco-analyze's defaults);
a matched detection whose ground truth has no labelled keypoint is skipped. For each
labelled keypoint k of the matched ground truth, the keypoint similarity
``ks = exp(-d^2 / (2 * area * (2 * sigma)^2))`` is taken against: the matched person's
keypoint k, every other ground truth of the same image and category at k, the matched
person's mirrored keypoint (flip index, with its visibility) and the other people's mirrored
keypoints (each with its own area; unlabelled entries count -1). With ``m`` the largest:
``good`` if m >= 0.85 and it belongs to the matched person's own keypoint, ``jitter`` if
0.5 <= m < 0.85 and own, ``inversion`` if m >= 0.5 on the matched person's mirrored keypoint,
``swap`` if m >= 0.5 on another person's keypoint (mirrored or not), ``miss`` if m < 0.5.
Ties go to the first of (own, others, own mirrored, others mirrored), coco-analyze's row order.
One deliberate difference: coco-analyze requires m > 0.85 for ``good``, leaving m == 0.85
unclassified; here m == 0.85 is ``good`` so the five types partition the keypoints.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .accumulate import accumulate_sorted
from .inputs import EvalInput
from .layout import Layout
from .matching import Matches, match
from .oks import keypoint_exponent
from .pairs import PairCache
from .params import AREA_ALL, I50, I75, IOU_THRS, KP_MAX_DET, REC_THRS

#: coco-analyze's defaults.
ERROR_MATCH_OKS = 0.1
ERROR_AREA_RANGE = (32.0**2, 1e5**2)
GOOD_KS = 0.85
JITTER_KS = 0.5
ERROR_TYPES = ("good", "jitter", "inversion", "swap", "miss")


def _gt_ignore(inp: EvalInput, layout: Layout, area: tuple[float, float]) -> np.ndarray:
    g = inp.gts
    rows = layout.gt
    ig = g.iscrowd[rows] | (g.num_keypoints[rows] == 0)
    return ig | (g.area[rows] < area[0]) | (g.area[rows] > area[1])


def _det_outside(inp: EvalInput, layout: Layout, area: tuple[float, float]) -> np.ndarray:
    a = inp.dets.area[layout.det]
    return (a < area[0]) | (a > area[1])


def keypoint_matches(
    cache: PairCache,
    cat: int,
    thresholds: Sequence[float] | np.ndarray = IOU_THRS,
    area: tuple[float, float] = AREA_ALL,
    max_det: int = KP_MAX_DET,
) -> Matches:
    """evaluateImg for keypoints (OKS) of one category over all evaluated images."""
    inp = cache.inp
    lay = cache.layout(cat, max_det)
    sim = cache.oks(cat, max_det)
    return match(
        lay,
        sim,
        _gt_ignore(inp, lay, area),
        inp.gts.iscrowd[lay.gt],
        _det_outside(inp, lay, area),
        np.asarray(thresholds, dtype=np.float64),
        inp.dets.score[lay.det],
    )


def _mean_valid(values: list[np.ndarray]) -> float:
    stacked = [v for v in values if v is not None]
    if not stacked:
        return -1.0
    s = np.stack(stacked, axis=-1)
    valid = s[s > -1]
    return -1.0 if valid.size == 0 else float(np.mean(valid))


@dataclass(frozen=True)
class PerKeypointAP:
    ap: list[float]
    ap50: list[float]
    ap75: list[float]


def per_keypoint_ap(cache: PairCache) -> PerKeypointAP:
    """COCO keypoint AP, AP50 and AP75 for each keypoint alone (see the module docstring)."""
    inp = cache.inp
    k_count = inp.num_keypoints
    g, d = inp.gts, inp.dets
    assert g.keypoints is not None and d.keypoints is not None
    # per keypoint, per category: precision [T, R] or None (category without ground truth)
    prec: list[list[np.ndarray | None]] = [[] for _ in range(k_count)]
    for cat in inp.cat_ids:
        lay = cache.layout(cat, KP_MAX_DET)
        ks_by_k = np.ascontiguousarray(cache.keypoint_similarity(cat, KP_MAX_DET).T)  # [K, P]
        box_oks = cache.box_oks(cat, KP_MAX_DET)
        labelled = g.keypoints[lay.gt][:, :, 2] > 0  # [M, K]
        pair_labelled = np.ascontiguousarray(labelled[lay.pair_g].T)  # [K, P]
        crowd = g.iscrowd[lay.gt]
        out_g = (g.area[lay.gt] < AREA_ALL[0]) | (g.area[lay.gt] > AREA_ALL[1])
        out_d = _det_outside(inp, lay, AREA_ALL)
        score = d.score[lay.det]
        order = np.argsort(-score, kind="mergesort")  # accumulate's order, the same for every k
        for k in range(k_count):
            # a ground truth masked to keypoint k: OKS = exp(-e_k) if labelled, else it has
            # zero keypoints (computeOks' box distance) and is an ignore region
            sim = np.where(pair_labelled[k], ks_by_k[k], box_oks)
            ignore = crowd | ~labelled[:, k] | out_g
            m = match(lay, sim, ignore, crowd, out_d, IOU_THRS, score)
            npig = int(m.npig_per_image().sum())
            if npig == 0:
                prec[k].append(None)
                continue
            tp, fp = m.tp_fp()
            p, _ = accumulate_sorted(tp[:, order], fp[:, order], npig, REC_THRS)
            prec[k].append(p)
    ap, ap50, ap75 = [], [], []
    for k in range(k_count):
        ps = [p for p in prec[k] if p is not None]
        ap.append(_mean_valid(ps))
        ap50.append(_mean_valid([p[I50] for p in ps]))
        ap75.append(_mean_valid([p[I75] for p in ps]))
    return PerKeypointAP(ap=ap, ap50=ap50, ap75=ap75)


@dataclass(frozen=True)
class MatchedKeypointStats:
    """Per keypoint over matched (detection, ground truth) pairs with the keypoint labelled."""

    count: list[int]  # labelled keypoints of matched ground truths
    oks: list[float | None]  # mean keypoint similarity exp(-e_k)
    pck: dict[float, list[float | None]]  # alpha -> share with distance < alpha * max(w, h)
    pck_overall: dict[float, float | None]
    pairs: int  # matched detections
    mean_oks: float | None  # mean OKS of the matched pairs


def matched_pairs(cache: PairCache) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(detection rows, ground-truth rows, OKS) matched at OKS 0.5, area all, maxDets 20."""
    inp = cache.inp
    d_rows, g_rows, oks = (
        [np.zeros(0, dtype=np.int64)],
        [np.zeros(0, dtype=np.int64)],
        [np.zeros(0)],
    )
    t0 = np.asarray([IOU_THRS[0]])
    for cat in inp.cat_ids:
        m = keypoint_matches(cache, cat, thresholds=t0)
        ok = (m.gt_match[0] >= 0) & ~m.det_ignore[0]
        d_rows.append(m.layout.det[ok])
        g_rows.append(m.layout.gt[m.gt_match[0, ok]])
        # the OKS of each matched pair, from the pair table (det-major within an image)
        lay = m.layout
        pos = np.flatnonzero(ok)
        pair_index = lay.pair_d.searchsorted(pos) + (
            m.gt_match[0, ok] - lay.g_start[lay.det_img[pos]]
        )
        oks.append(cache.oks(cat, KP_MAX_DET)[pair_index])
    return np.concatenate(d_rows), np.concatenate(g_rows), np.concatenate(oks)


def matched_keypoint_stats(
    cache: PairCache, alphas: Sequence[float] = (0.05, 0.1, 0.2)
) -> MatchedKeypointStats:
    inp = cache.inp
    g, d = inp.gts, inp.dets
    assert g.keypoints is not None and d.keypoints is not None
    dr, gr, pair_oks_values = matched_pairs(cache)
    k_count = inp.num_keypoints
    gk = g.keypoints[gr]
    dk = d.keypoints[dr]
    lab = gk[:, :, 2] > 0  # [n, K]
    count = lab.sum(axis=0)
    ks = np.exp(-keypoint_exponent(dk, gk, g.area[gr], inp.sigmas))
    dist = np.hypot(dk[:, :, 0] - gk[:, :, 0], dk[:, :, 1] - gk[:, :, 1])
    size = np.maximum(g.bbox[gr, 2], g.bbox[gr, 3])[:, None]

    def per_k(values: np.ndarray) -> list[float | None]:
        sums = np.where(lab, values, 0).sum(axis=0)
        return [float(sums[k] / count[k]) if count[k] else None for k in range(k_count)]

    pck = {}
    pck_overall = {}
    total = int(count.sum())
    for a in alphas:
        hit = (dist < float(a) * size) & lab
        pck[float(a)] = per_k(hit.astype(float))
        pck_overall[float(a)] = float(hit.sum() / total) if total else None
    return MatchedKeypointStats(
        count=[int(c) for c in count],
        oks=per_k(ks),
        pck=pck,
        pck_overall=pck_overall,
        pairs=len(dr),
        mean_oks=float(pair_oks_values.mean()) if len(dr) else None,
    )


@dataclass(frozen=True)
class KeypointErrorCounts:
    count: np.ndarray  # [K] analysed labelled keypoints
    types: dict[str, np.ndarray]  # error type -> [K] counts
    detections: int  # matched detections analysed
    detections_with: dict[str, int]  # error type -> detections with at least one such keypoint


def keypoint_errors(cache: PairCache) -> KeypointErrorCounts:
    """coco-analyze's keypoint error types (see the module docstring)."""
    inp = cache.inp
    g, d = inp.gts, inp.dets
    assert g.keypoints is not None and d.keypoints is not None
    k_count = inp.num_keypoints
    flip = np.asarray(inp.flip_index, dtype=np.int64)
    counts = np.zeros(k_count, dtype=np.int64)
    types = {t: np.zeros(k_count, dtype=np.int64) for t in ERROR_TYPES}
    det_with = dict.fromkeys(ERROR_TYPES, 0)
    analysed = 0
    for cat in inp.cat_ids:
        m = keypoint_matches(cache, cat, thresholds=[ERROR_MATCH_OKS], area=ERROR_AREA_RANGE)
        lay = m.layout
        own_pos = m.gt_match[0]  # position in lay.gt, -1 unmatched
        sel = own_pos >= 0
        sel &= np.where(sel, g.num_keypoints[lay.gt[np.maximum(own_pos, 0)]] > 0, False)
        if not sel.any():
            continue
        # every (selected det, gt of its image) pair; pairs are det-major within an image
        psel = sel[lay.pair_d]
        pd_pos, pg_pos = lay.pair_d[psel], lay.pair_g[psel]
        pd, pg = lay.det[pd_pos], lay.gt[pg_pos]
        gk = g.keypoints[pg]
        area = g.area[pg]
        dk = d.keypoints[pd]
        ks = np.exp(-keypoint_exponent(dk, gk, area, inp.sigmas))
        ks = np.where(gk[:, :, 2] > 0, ks, -1.0)
        gkf = gk[:, flip, :]
        ksf = np.exp(-keypoint_exponent(dk, gkf, area, inp.sigmas))
        ksf = np.where(gkf[:, :, 2] > 0, ksf, -1.0)
        is_own = pg_pos == own_pos[pd_pos]
        # reduce per detection: pair blocks are contiguous per detection
        det_ids, start = np.unique(pd_pos, return_index=True)
        fill = np.full_like(ks, -2.0)
        own_n = np.maximum.reduceat(np.where(is_own[:, None], ks, fill), start, axis=0)
        own_f = np.maximum.reduceat(np.where(is_own[:, None], ksf, fill), start, axis=0)
        oth_n = np.maximum.reduceat(np.where(is_own[:, None], fill, ks), start, axis=0)
        oth_f = np.maximum.reduceat(np.where(is_own[:, None], fill, ksf), start, axis=0)
        top = np.maximum(np.maximum(own_n, oth_n), np.maximum(own_f, oth_f))
        own_gk = g.keypoints[lay.gt[own_pos[det_ids]]]
        lab = own_gk[:, :, 2] > 0
        is_own_best = own_n == top
        is_other = ~is_own_best & (oth_n == top)
        is_inv = ~is_own_best & ~is_other & (own_f == top)
        found = {
            "good": lab & is_own_best & (top >= GOOD_KS),
            "jitter": lab & is_own_best & (top >= JITTER_KS) & (top < GOOD_KS),
            "inversion": lab & is_inv & (top >= JITTER_KS),
            "swap": lab & ~is_own_best & ~is_inv & (top >= JITTER_KS),
            "miss": lab & (top < JITTER_KS),
        }
        counts += lab.sum(axis=0)
        for t, f in found.items():
            types[t] += f.sum(axis=0)
            det_with[t] += int(f.any(axis=1).sum())
        analysed += len(det_ids)
    return KeypointErrorCounts(
        count=counts, types=types, detections=analysed, detections_with=det_with
    )
