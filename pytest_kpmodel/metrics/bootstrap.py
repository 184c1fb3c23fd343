"""Bootstrap confidence intervals over images for box and keypoint AP, AP50 and AP75.

Per-image evaluation (matching at every IoU/OKS threshold, area all, maxDets 100 for boxes
and 20 for keypoints) is done once with :mod:`.matching`. A replicate
draws as many images as the evaluated set holds, uniformly with replacement (seeded
``numpy.random.default_rng``); an image drawn c times counts c times: each of its
detections enters accumulation with weight c and its non-ignored ground truths count c
times in the recall denominator. Only accumulation is redone per replicate. Box and keypoint
replicates use the same draws, so their intervals are paired. With all weights 1 this is
pycocotools' accumulate exactly (the estimate equals the engine's AP); when no two
detections of one image tie in score it also equals pycocotools' accumulate over the
resampled image list. The interval is the percentile interval of the replicate values;
replicates where no category has ground truth (AP -1) are left out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .accumulate import accumulate_sorted
from .inputs import EvalInput
from .matching import match
from .pairs import PairCache
from .params import AREA_ALL, EPS, I50, I75, IOU_THRS, MAX_DETS, REC_THRS

STATS = ("AP", "AP50", "AP75")


@dataclass(frozen=True)
class _Category:
    """One category's detections in accumulation order, reduced to what AP depends on.

    Precision can only rise at a true positive and recall only changes there, so the
    interpolated precision at every recall threshold is determined by the true-positive
    points alone: at a true positive n, TP(n) and FP(n) = (valid detections up to n) - TP(n),
    where "valid" excludes detections ignored at that threshold. A detection ignored at every
    threshold is dropped altogether.
    """

    img: np.ndarray  # [N] image of each kept detection
    tp: np.ndarray  # [T, N] bool (for the unweighted estimate)
    fp: np.ndarray  # [T, N] bool
    tp_pos: np.ndarray  # [T, P] positions of true positives (padded with 0)
    tp_valid: np.ndarray  # [T, P] bool
    tp_count: np.ndarray  # [T]
    ig_pos: np.ndarray  # [T, Q] positions of detections ignored at t (padded with 0)
    ig_valid: np.ndarray  # [T, Q] bool
    ig_before: np.ndarray  # [T, P] ignored detections at or before each true positive (index+1)
    npig: np.ndarray  # [I] non-ignored ground truths per image
    marked: np.ndarray  # [U] positions true positive or ignored at some threshold
    tp_marked: np.ndarray  # [T, P] tp_pos as indices into ``marked``
    ig_marked: np.ndarray  # [T, Q] ig_pos as indices into ``marked``


@dataclass(frozen=True)
class Interval:
    estimate: float
    low: float | None
    high: float | None
    std: float | None

    def to_json(self) -> dict[str, float | None]:
        return {"estimate": self.estimate, "low": self.low, "high": self.high, "std": self.std}


def _padded(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    count = mask.sum(axis=1)
    width = max(int(count.max()) if len(count) else 0, 1)
    pos = np.zeros((mask.shape[0], width), dtype=np.int64)
    valid = np.arange(width)[None, :] < count[:, None]
    pos[valid] = np.nonzero(mask)[1]
    return pos, valid, count


def _prepare(cache: PairCache, iou_type: str) -> list[_Category]:
    inp = cache.inp
    cats = []
    g = inp.gts
    max_det = MAX_DETS[iou_type][-1]
    for cat in inp.cat_ids:
        lay = cache.layout(cat, max_det)
        if iou_type == "bbox":
            sim = cache.iou(cat, max_det)
            ignore = g.iscrowd[lay.gt].copy()
        else:
            sim = cache.oks(cat, max_det)
            ignore = g.iscrowd[lay.gt] | (g.num_keypoints[lay.gt] == 0)
        ga = g.area[lay.gt]
        ignore |= (ga < AREA_ALL[0]) | (ga > AREA_ALL[1])
        da = inp.dets.area[lay.det]
        outside = (da < AREA_ALL[0]) | (da > AREA_ALL[1])
        score = inp.dets.score[lay.det]
        m = match(lay, sim, ignore, g.iscrowd[lay.gt], outside, IOU_THRS, score)
        tp, fp = m.tp_fp()
        order = np.argsort(-score, kind="mergesort")
        tp, fp, img, det_ig = tp[:, order], fp[:, order], lay.det_img[order], m.det_ignore[:, order]
        keep = ~det_ig.all(axis=0)
        tp, fp, img, det_ig = tp[:, keep], fp[:, keep], img[keep], det_ig[:, keep]
        tp_pos, tp_valid, tp_count = _padded(tp)
        ig_pos, ig_valid, _ = _padded(det_ig)
        ig_before = np.stack(
            [
                np.searchsorted(ig_pos[t][ig_valid[t]], tp_pos[t], side="right")
                for t in range(len(tp))
            ]
        )
        marked = np.flatnonzero((tp | det_ig).any(axis=0))
        cats.append(
            _Category(
                img=img,
                tp=tp,
                fp=fp,
                tp_pos=tp_pos,
                tp_valid=tp_valid,
                tp_count=tp_count,
                ig_pos=ig_pos,
                ig_valid=ig_valid,
                ig_before=ig_before,
                npig=m.npig_per_image(),
                marked=marked,
                tp_marked=np.searchsorted(marked, tp_pos),
                ig_marked=np.searchsorted(marked, ig_pos),
            )
        )
    return cats


#: Replicates are evaluated together in chunks whose [chunk, detections] integer arrays hold
#: about this many values (32 MB), at least 25 replicates at a time.
CHUNK_VALUES = 4_000_000


def _recall_counts(npig: np.ndarray) -> np.ndarray:
    """[B, R]: the least true-positive count m with ``m / npig[b] >= REC_THRS[r]`` as floats
    compare, so that ``tp / npig < thr`` exactly when ``tp < m``: division by a positive
    number rounds monotonically, and ``ceil(thr * npig)`` is off by at most one either way."""
    total = npig[:, None]
    m = np.ceil(REC_THRS[None, :] * total)
    m = np.where((m - 1) / total >= REC_THRS, m - 1, m)
    m = np.where(m / total < REC_THRS, m + 1, m)
    return m.astype(np.int64)


def _replicate_precisions(c: _Category, counts: np.ndarray, npig: np.ndarray) -> np.ndarray:
    """Interpolated precision [B, T, R] of one category under the image weights ``counts``
    [B, I] of B replicates at once (``npig`` [B]: their non-ignored ground truths, > 0).

    Row b is what pycocotools' accumulate gives with every detection of image i counted
    counts[b, i] times (see ``_Category``): cumulative weights along the accumulation order,
    precision at each true positive, its running maximum from the right, and the first true
    positive reaching each recall threshold (the same comparisons as pycocotools').

    Weights are integers, so they are summed as integers (int32 unless a sum could overflow
    it): exact, and numpy's cumulative sum along a row is vectorised for integers (about 3x
    faster than for floats, whose order of additions it keeps). Precision and recall are
    divided in float64 from those integers: the same values as float64 sums. Only the valid-detection count needs every detection; the
    rest is gathered once onto the ``marked`` ones (true positive or ignored somewhere), a
    few times fewer, so each threshold's gathers read a small array, not every detection.
    ``np.take`` keeps the gathered rows C-contiguous, where ``a[:, idx]`` can return a
    transposed layout that makes every later pass strided."""
    b_count, t_count, r_count = len(counts), len(c.tp), len(REC_THRS)
    precision = np.zeros((b_count, t_count, r_count))
    if c.img.size == 0:
        return precision
    # int32 halves what every gather moves (about 2x faster); exact while no sum can overflow
    dt = np.int32 if (int(np.max(counts)) + 1) * len(c.img) < 2**31 else np.int64
    counts = np.asarray(counts, dtype=dt)
    need = None  # the recall thresholds as counts, made when a long row needs them
    rows = np.arange(b_count)[:, None]
    valid_cum = np.cumsum(np.take(counts, c.img, axis=1), axis=1, dtype=dt)
    valid_cum = np.take(valid_cum, c.marked, axis=1)
    w = np.take(counts, c.img[c.marked], axis=1)  # [B, U]
    for t in range(t_count):
        n = int(c.tp_count[t])
        if n == 0:
            continue
        pos = c.tp_marked[t, :n]
        tp_cum = np.cumsum(np.take(w, pos, axis=1), axis=1, dtype=dt)  # [B, n]
        valid_at = np.take(valid_cum, pos, axis=1)
        ig = c.ig_marked[t][c.ig_valid[t]]
        if ig.size:
            ig_cum = np.zeros((b_count, ig.size + 1), dtype=dt)
            np.cumsum(np.take(w, ig, axis=1), axis=1, out=ig_cum[:, 1:])
            valid_at -= np.take(ig_cum, c.ig_before[t, :n], axis=1)
        # valid_at is fp + tp exactly (integers): this is tp / (fp + tp + EPS) bit for bit
        pr = tp_cum / (valid_at + EPS)
        # inds[b, r] = searchsorted(tp_cum[b] / npig[b], REC_THRS[r], "left"): the first true
        # positive reaching recall threshold r
        if n > 8 * r_count:
            # Long rows: the thresholds searched (R log n comparisons a row), among the integer
            # sums themselves; rows lifted apart by a multiple of `span` make one sorted array,
            # searched in one call. The envelope is read at those R places only.
            need = _recall_counts(npig) if need is None else need
            span = max(int(tp_cum[:, -1].max()), int(need.max())) + 1
            lift = span * rows
            found = np.searchsorted((tp_cum + lift).ravel(), (need + lift).ravel())
            inds = found.reshape(b_count, r_count) - n * rows
            envelope = _suffix_max_at(pr, np.minimum(inds, n - 1), n * (rows[:, 0] + 1))
        else:
            # Short rows (many small categories): each recall located among the R thresholds,
            # k = #(thresholds <= recall), and inds[b, r] = #(j: k[b, j] <= r) from one
            # bincount of every row: the same float comparisons, n log R of them a row.
            rc = tp_cum / npig[:, None]
            k = np.searchsorted(REC_THRS, rc.ravel(), side="right") + (r_count + 1) * np.repeat(
                rows[:, 0], n
            )
            hist = np.bincount(k, minlength=b_count * (r_count + 1))
            inds = np.cumsum(hist.reshape(b_count, r_count + 1), axis=1)[:, :r_count]
            env = np.maximum.accumulate(pr[:, ::-1], axis=1)[:, ::-1]
            envelope = env[rows, np.minimum(inds, n - 1)]
        precision[:, t, :] = np.where(inds < n, envelope, 0.0)
    return precision


def _suffix_max_at(values: np.ndarray, at: np.ndarray, row_ends: np.ndarray) -> np.ndarray:
    """``max(values[b, at[b, r]:])`` [B, R] for ``at`` non-decreasing along each row: the
    maximum of each stretch between consecutive ``at`` (one reduction over the rows, where a
    running maximum from the right is a slower scan plus a reversed copy), then the running
    maximum of those R stretch maxima from the right. A repeated index gives one element, not
    a stretch; the stretch after it starts at the same place, so the result is unchanged."""
    b_count, n = values.shape
    r_count = at.shape[1]
    bounds = np.concatenate([at + row_ends[:, None] - n, row_ends[:, None]], axis=1).ravel()
    stretch = np.empty(b_count * (r_count + 1))
    stretch[:-1] = np.maximum.reduceat(values.ravel(), bounds[:-1])
    stretch = stretch.reshape(b_count, r_count + 1)[:, :r_count]  # the last runs into row b+1
    return np.maximum.accumulate(stretch[:, ::-1], axis=1)[:, ::-1]


def _replicate_precision(c: _Category, counts: np.ndarray, npig: float) -> np.ndarray:
    """Interpolated precision [T, R] of one replicate (image weights ``counts`` [I])."""
    return _replicate_precisions(c, counts[None, :], np.array([npig]))[0]


def _replicate_stats(cats: list[_Category], counts: np.ndarray) -> np.ndarray:
    """AP, AP50, AP75 [B, 3] of B replicates (image weights ``counts`` [B, I]); -1 where no
    category has ground truth in a replicate."""
    b_count = len(counts)
    total = np.zeros((b_count, len(IOU_THRS), len(REC_THRS)))
    present = np.zeros(b_count)
    for c in cats:
        npig = counts @ c.npig.astype(np.float64)
        has = npig > 0
        if not has.any():
            continue
        p = np.zeros_like(total)
        p[has] = _replicate_precisions(c, counts[has], npig[has])
        total += p
        present += has
    out = np.full((b_count, 3), -1.0)
    ok = present > 0
    mean = total[ok] / present[ok, None, None]  # mean over present categories
    out[ok, 0] = mean.mean(axis=(1, 2))
    out[ok, 1] = mean[:, I50].mean(axis=1)
    out[ok, 2] = mean[:, I75].mean(axis=1)
    return out


def _stats(cats: list[_Category]) -> tuple[float, float, float]:
    """AP, AP50, AP75 of the evaluated set itself (every image once)."""
    precs = []
    for c in cats:
        npig = float(c.npig.sum())
        if npig:
            precs.append(accumulate_sorted(c.tp, c.fp, npig, REC_THRS)[0])
    if not precs:
        return -1.0, -1.0, -1.0
    s = np.stack(precs, axis=-1)  # [T, R, K]; present categories have no -1 entries
    return float(np.mean(s)), float(np.mean(s[I50])), float(np.mean(s[I75]))


def bootstrap(
    inp: EvalInput,
    iou_types: Sequence[str],
    replicates: int = 200,
    seed: int = 0,
    confidence: float = 0.95,
    cache: PairCache | None = None,
) -> dict[str, dict[str, Interval]]:
    """Percentile intervals for AP, AP50, AP75 per iou type (see the module docstring)."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    cache = cache if cache is not None else PairCache(inp)
    prepared = {t: _prepare(cache, t) for t in iou_types}
    estimates = {t: _stats(c) for t, c in prepared.items()}
    n_img = len(inp.image_ids)
    rng = np.random.default_rng(seed)
    values = {t: np.full((replicates, len(STATS)), np.nan) for t in iou_types}
    draws = [
        np.bincount(rng.integers(0, n_img, size=n_img), minlength=n_img)
        for _ in range(replicates if n_img else 0)
    ]  # drawn one replicate at a time: the same draws as ever for a seed
    detections = max(sum(len(c.img) for cats in prepared.values() for c in cats), 1)
    chunk = max(25, CHUNK_VALUES // detections)
    for start in range(0, len(draws), chunk):
        counts = np.stack(draws[start : start + chunk])
        for t, cats in prepared.items():
            values[t][start : start + len(counts)] = _replicate_stats(cats, counts)
    lo_q, hi_q = (1 - confidence) / 2, 1 - (1 - confidence) / 2
    out: dict[str, dict[str, Interval]] = {}
    for t in iou_types:
        out[t] = {}
        for j, name in enumerate(STATS):
            v = values[t][:, j]
            v = v[np.isfinite(v) & (v > -1)]
            if v.size:
                lo, hi = np.quantile(v, [lo_q, hi_q])
                std = float(np.std(v, ddof=1)) if v.size > 1 else 0.0
                out[t][name] = Interval(estimates[t][j], float(lo), float(hi), std)
            else:
                out[t][name] = Interval(estimates[t][j], None, None, None)
    return out
