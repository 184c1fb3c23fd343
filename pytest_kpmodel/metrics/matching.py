"""pycocotools' per-image evaluation and accumulation, re-done exactly with numpy arrays.

The engines give summary stats and accumulated precision; the analyses (per-keypoint AP,
PCK, error analysis, bootstrap) need what pycocotools keeps per image: which detection
matched which ground truth at each threshold, and which are ignored. This module computes
that for all images at once, reproducing ``COCOeval.computeIoU``/``computeOks``,
``evaluateImg`` and ``accumulate`` operation for operation (same float64 arithmetic, same
summation order, same stable sorts), so its results equal pycocotools' bit for bit;
``tests/metrics`` checks this against pycocotools' ``evalImgs`` and ``eval['precision']``.

Order conventions (pycocotools'): detections of an image sorted by descending score, ties
in results order, cut at ``max_det``; ground truths of an image in annotation order, then
stably sorted non-ignored first; accumulation concatenates images in ascending image-id
order and stably sorts all detections by descending score.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .inputs import DetectionArrays, EvalInput, GroundTruthArrays

_EPS = np.spacing(1)


@dataclass(frozen=True)
class Layout:
    """Detections and ground truths of one category on the evaluated images."""

    num_images: int
    det: (
        np.ndarray
    )  # [N] rows of DetectionArrays: (image, -score, results order), top max_det per image
    det_img: np.ndarray  # [N]
    gt: np.ndarray  # [M] rows of GroundTruthArrays: (image, annotation order)
    gt_img: np.ndarray  # [M]
    d_start: np.ndarray  # [I]
    d_count: np.ndarray  # [I]
    g_start: np.ndarray  # [I]
    g_count: np.ndarray  # [I]
    pair_d: np.ndarray  # [P] position in det; pairs are every (det, gt) of the same image
    pair_g: np.ndarray  # [P] position in gt
    buckets: list[_Bucket] = field(default_factory=list)  # images grouped for vectorised matching

    @property
    def num_dets(self) -> int:
        return len(self.det)


def _starts(img: np.ndarray, num_images: int) -> tuple[np.ndarray, np.ndarray]:
    count = np.bincount(img, minlength=num_images).astype(np.int64)
    return np.cumsum(count) - count, count


def make_layout(
    dets: DetectionArrays, gts: GroundTruthArrays, num_images: int, cat: int, max_det: int
) -> Layout:
    d_rows = np.flatnonzero(dets.cat == cat)
    order = np.lexsort((d_rows, -dets.score[d_rows], dets.img[d_rows]))
    d_rows = d_rows[order]
    d_img = dets.img[d_rows]
    start, _ = _starts(d_img, num_images)
    rank = np.arange(len(d_rows)) - start[d_img]
    keep = rank < max_det
    d_rows, d_img = d_rows[keep], d_img[keep]
    d_start, d_count = _starts(d_img, num_images)

    g_rows = np.flatnonzero(gts.cat == cat)
    g_rows = g_rows[np.argsort(gts.img[g_rows], kind="stable")]
    g_img = gts.img[g_rows]
    g_start, g_count = _starts(g_img, num_images)

    n_pairs = d_count * g_count
    p_img = np.repeat(np.arange(num_images), n_pairs)
    p_start = np.cumsum(n_pairs) - n_pairs
    off = np.arange(int(n_pairs.sum())) - p_start[p_img]
    gc = g_count[p_img]
    pair_d = d_start[p_img] + off // np.maximum(gc, 1)
    pair_g = g_start[p_img] + off % np.maximum(gc, 1)
    lay = Layout(
        num_images=num_images,
        det=d_rows,
        det_img=d_img,
        gt=g_rows,
        gt_img=g_img,
        d_start=d_start,
        d_count=d_count,
        g_start=g_start,
        g_count=g_count,
        pair_d=pair_d,
        pair_g=pair_g,
    )
    object.__setattr__(lay, "buckets", _buckets(lay))
    return lay


# ----------------------------------------------------------------------------- similarity
def box_iou(dbox: np.ndarray, gbox: np.ndarray, crowd: np.ndarray) -> np.ndarray:
    """pycocotools' bbIou for paired rows: [P, 4] x [P, 4] -> [P]."""
    da = dbox[:, 2] * dbox[:, 3]
    ga = gbox[:, 2] * gbox[:, 3]
    w = np.fmin(dbox[:, 2] + dbox[:, 0], gbox[:, 2] + gbox[:, 0]) - np.fmax(dbox[:, 0], gbox[:, 0])
    h = np.fmin(dbox[:, 3] + dbox[:, 1], gbox[:, 3] + gbox[:, 1]) - np.fmax(dbox[:, 1], gbox[:, 1])
    i = w * h
    u = np.where(crowd, da, da + ga - i)
    ok = (w > 0) & (h > 0)
    out = np.zeros(len(dbox))
    out[ok] = i[ok] / u[ok]
    return out


def oks_terms(
    dkp: np.ndarray, gkp: np.ndarray, garea: np.ndarray, sigmas: np.ndarray
) -> np.ndarray:
    """computeOks' exponent e for paired rows with labelled keypoints: [P, K]."""
    var = (sigmas * 2) ** 2
    dx = dkp[:, :, 0] - gkp[:, :, 0]
    dy = dkp[:, :, 1] - gkp[:, :, 1]
    return (dx**2 + dy**2) / var / (garea[:, None] + _EPS) / 2


def oks_box_terms(
    dkp: np.ndarray, gbox: np.ndarray, garea: np.ndarray, sigmas: np.ndarray
) -> np.ndarray:
    """computeOks' exponent for ground truths without labelled keypoints (distance to 2x box)."""
    var = (sigmas * 2) ** 2
    x0 = (gbox[:, 0] - gbox[:, 2])[:, None]
    x1 = (gbox[:, 0] + gbox[:, 2] * 2)[:, None]
    y0 = (gbox[:, 1] - gbox[:, 3])[:, None]
    y1 = (gbox[:, 1] + gbox[:, 3] * 2)[:, None]
    xd, yd = dkp[:, :, 0], dkp[:, :, 1]
    dx = np.maximum(0.0, x0 - xd) + np.maximum(0.0, xd - x1)
    dy = np.maximum(0.0, y0 - yd) + np.maximum(0.0, yd - y1)
    return (dx**2 + dy**2) / var / (garea[:, None] + _EPS) / 2


def mean_exp(e: np.ndarray, use: np.ndarray) -> np.ndarray:
    """``np.sum(np.exp(-e[row][use[row]])) / n`` per row, in numpy's own summation order."""
    out = np.zeros(len(e))
    n_use = use.sum(axis=1)
    ex = np.exp(-e)
    for n in np.unique(n_use):
        if n == 0:
            continue
        rows = np.flatnonzero(n_use == n)
        vals = ex[rows][use[rows]].reshape(len(rows), int(n))
        out[rows] = vals.sum(axis=1) / int(n)
    return out


class PairCache:
    """Layouts and (det, gt) similarities per category, computed once and shared by analyses."""

    def __init__(self, inp: EvalInput) -> None:
        self.inp = inp
        self._layouts: dict[tuple[int, int], Layout] = {}
        self._sims: dict[tuple[str, int, int], np.ndarray] = {}
        self._ks: dict[tuple[int, int], np.ndarray] = {}
        self._coords: tuple[np.ndarray, ...] | None = None

    def _keypoint_columns(self) -> tuple[np.ndarray, ...]:
        """Contiguous detection x, y; ground truth x, y; labelled count; labelled-first order."""
        if self._coords is None:
            d, g = self.inp.dets.keypoints, self.inp.gts.keypoints
            assert d is not None and g is not None
            vis = g[:, :, 2] > 0
            self._coords = (
                np.ascontiguousarray(d[:, :, 0]),
                np.ascontiguousarray(d[:, :, 1]),
                np.ascontiguousarray(g[:, :, 0]),
                np.ascontiguousarray(g[:, :, 1]),
                vis.sum(axis=1),
                np.argsort(~vis, axis=1, kind="stable"),  # per gt: labelled keypoints first
            )
        return self._coords

    def layout(self, cat: int, max_det: int) -> Layout:
        key = (cat, max_det)
        if key not in self._layouts:
            inp = self.inp
            self._layouts[key] = make_layout(inp.dets, inp.gts, len(inp.image_ids), cat, max_det)
        return self._layouts[key]

    def iou(self, cat: int, max_det: int) -> np.ndarray:
        key = ("bbox", cat, max_det)
        if key not in self._sims:
            self._sims[key] = pair_iou(self.inp, self.layout(cat, max_det))
        return self._sims[key]

    def oks(self, cat: int, max_det: int) -> np.ndarray:
        """computeOks for every pair of the layout."""
        key = ("keypoints", cat, max_det)
        if key not in self._sims:
            self._sims[key] = self._oks(cat, max_det)
        return self._sims[key]

    def keypoint_similarity(self, cat: int, max_det: int) -> np.ndarray:
        """``exp(-e)`` per pair and keypoint [P, K], e being computeOks' exponent."""
        key = (cat, max_det)
        if key not in self._ks:
            inp, lay = self.inp, self.layout(cat, max_det)
            pd, pg = lay.det[lay.pair_d], lay.gt[lay.pair_g]
            var = (inp.sigmas * 2) ** 2
            dxs, dys, gxs, gys, _, _ = self._keypoint_columns()
            # computeOks' e = (dx**2 + dy**2) / var / (area + eps) / 2, in place (same roundings)
            e = dxs[pd]
            e -= gxs[pg]
            np.square(e, out=e)
            dy = dys[pd]
            dy -= gys[pg]
            np.square(dy, out=dy)
            e += dy
            del dy
            e /= var
            e /= inp.gts.area[pg][:, None] + _EPS
            e /= 2
            np.negative(e, out=e)
            self._ks[key] = np.exp(e, out=e)
        return self._ks[key]

    def box_oks(self, cat: int, max_det: int, rows: np.ndarray | None = None) -> np.ndarray:
        """computeOks for pairs whose ground truth has no labelled keypoint (all pairs or ``rows``)."""
        inp, lay = self.inp, self.layout(cat, max_det)
        g = inp.gts
        pd, pg = lay.det[lay.pair_d], lay.gt[lay.pair_g]
        if rows is not None:
            pd, pg = pd[rows], pg[rows]
        var = (inp.sigmas * 2) ** 2
        bx, by, bw, bh = (g.bbox[pg, i][:, None] for i in range(4))
        dxs, dys = self._keypoint_columns()[:2]
        xd, yd = dxs[pd], dys[pd]
        # computeOks: distance to the ground truth box doubled on every side
        dx = np.maximum(0.0, (bx - bw) - xd) + np.maximum(0.0, xd - (bx + bw * 2))
        dy = np.maximum(0.0, (by - bh) - yd) + np.maximum(0.0, yd - (by + bh * 2))
        e = (dx**2 + dy**2) / var / (g.area[pg][:, None] + _EPS) / 2
        return np.exp(-e).sum(axis=1) / e.shape[1]

    def _oks(self, cat: int, max_det: int) -> np.ndarray:
        lay = self.layout(cat, max_det)
        ks = self.keypoint_similarity(cat, max_det)
        pg = lay.gt[lay.pair_g]
        out = np.zeros(len(pg))
        labelled, compact = self._keypoint_columns()[4:]
        n_lab = labelled[pg]
        for n in np.unique(n_lab):
            rows = np.flatnonzero(n_lab == n)
            if n == 0:
                out[rows] = self.box_oks(cat, max_det, rows)
                continue
            # the labelled keypoints in order: np.sum(np.exp(-e[vg > 0])) / k1 of computeOks
            idx = compact[pg[rows], : int(n)]
            out[rows] = np.take_along_axis(ks[rows], idx, axis=1).sum(axis=1) / int(n)
        return out


def pair_oks(inp: EvalInput, layout: Layout) -> np.ndarray:
    """computeOks for every (det, gt) pair of ``layout`` (uncached)."""
    g, d = inp.gts, inp.dets
    assert g.keypoints is not None and d.keypoints is not None
    pd, pg = layout.det[layout.pair_d], layout.gt[layout.pair_g]
    gkp = g.keypoints[pg]
    vis = gkp[:, :, 2] > 0
    labelled = vis.any(axis=1)
    out = np.empty(len(pd))
    if labelled.any():
        e = oks_terms(d.keypoints[pd[labelled]], gkp[labelled], g.area[pg[labelled]], inp.sigmas)
        out[labelled] = mean_exp(e, vis[labelled])
    if (~labelled).any():
        nl = ~labelled
        e = oks_box_terms(d.keypoints[pd[nl]], g.bbox[pg[nl]], g.area[pg[nl]], inp.sigmas)
        out[nl] = mean_exp(e, np.ones(e.shape, dtype=bool))
    return out


def pair_iou(inp: EvalInput, layout: Layout) -> np.ndarray:
    pd = layout.det[layout.pair_d]
    pg = layout.gt[layout.pair_g]
    return box_iou(inp.dets.bbox[pd], inp.gts.bbox[pg], inp.gts.iscrowd[pg])


# ----------------------------------------------------------------------------- matching
@dataclass(frozen=True)
class Matches:
    """evaluateImg's output for every image of a layout, flattened over detections."""

    layout: Layout
    thresholds: np.ndarray  # [T]
    gt_match: np.ndarray  # [T, N] position in layout.gt of the matched ground truth, -1 if none
    det_ignore: np.ndarray  # [T, N] bool (dtIgnore)
    gt_ignore: np.ndarray  # [M] bool (gtIgnore: ignore flag or area outside the range)
    score: np.ndarray  # [N]

    def npig_per_image(self) -> np.ndarray:
        lay = self.layout
        return np.bincount(lay.gt_img[~self.gt_ignore], minlength=lay.num_images).astype(np.int64)


@dataclass(frozen=True)
class _Bucket:
    """Images with ground-truth counts in (gp/2, gp], most detections first, and their rows."""

    gp: int  # padded ground truths per image
    active: np.ndarray  # [max detections] images with more than r detections (a prefix)
    pair: np.ndarray  # pair rows in this bucket
    pair_loc: np.ndarray  # image position within the bucket
    pair_drank: np.ndarray  # the detection's rank in its image
    det: np.ndarray  # detection positions
    det_loc: np.ndarray
    det_rank: np.ndarray
    gt: np.ndarray  # ground-truth positions
    gt_loc: np.ndarray


def _split(key: np.ndarray, n_keys: int) -> list[np.ndarray]:
    order = np.argsort(key, kind="stable")
    counts = np.bincount(key, minlength=n_keys + 1)[:n_keys]
    return np.split(order[: int(counts.sum())], np.cumsum(counts)[:-1])


def _buckets(lay: Layout) -> list[_Bucket]:
    images = np.flatnonzero((lay.d_count > 0) & (lay.g_count > 0))
    if not len(images):
        return []
    gpad = 1 << np.ceil(np.log2(lay.g_count[images])).astype(np.int64)
    sizes = np.unique(gpad)
    bucket_of = np.full(lay.num_images, len(sizes), dtype=np.int64)  # len(sizes): no bucket
    loc = np.zeros(lay.num_images, dtype=np.int64)
    groups = []
    for b, size in enumerate(sizes):
        imgs = images[gpad == size]
        imgs = imgs[np.argsort(-lay.d_count[imgs], kind="stable")]
        bucket_of[imgs] = b
        loc[imgs] = np.arange(len(imgs))
        groups.append(imgs)
    pair_img = lay.det_img[lay.pair_d]
    pairs = _split(bucket_of[pair_img], len(sizes))
    dets = _split(bucket_of[lay.det_img], len(sizes))
    gts = _split(bucket_of[lay.gt_img], len(sizes))
    d_rank = np.arange(lay.num_dets) - lay.d_start[lay.det_img]
    out = []
    for b, size in enumerate(sizes):
        dc = lay.d_count[groups[b]]
        p, d, g = pairs[b], dets[b], gts[b]
        out.append(
            _Bucket(
                gp=int(size),
                active=(dc[None, :] > np.arange(int(dc.max()))[:, None]).sum(axis=1),
                pair=p,
                pair_loc=loc[pair_img[p]],
                pair_drank=d_rank[lay.pair_d[p]],
                det=d,
                det_loc=loc[lay.det_img[d]],
                det_rank=d_rank[d],
                gt=g,
                gt_loc=loc[lay.gt_img[g]],
            )
        )
    return out


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
    b: _Bucket,
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


# ----------------------------------------------------------------------------- accumulate
def accumulate(
    score: np.ndarray,
    tp: np.ndarray,
    fp: np.ndarray,
    npig: float,
    rec_thrs: np.ndarray,
    weights: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """pycocotools' accumulate for one category/area/maxDet: precision [T, R], recall [T].

    ``score``, ``tp``, ``fp`` are in concatenation order (images ascending, then score);
    ``weights`` (per detection) count a detection that many times (bootstrap).
    """
    order = np.argsort(-score, kind="mergesort")
    return accumulate_sorted(
        tp[:, order], fp[:, order], npig, rec_thrs, None if weights is None else weights[order]
    )


def accumulate_sorted(
    tp: np.ndarray,
    fp: np.ndarray,
    npig: float,
    rec_thrs: np.ndarray,
    weights: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`accumulate` on detections already in accumulation order."""
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
    pr = tp_sum / (fp_sum + tp_sum + _EPS)
    env = np.maximum.accumulate(pr[:, ::-1], axis=1)[:, ::-1]
    recall[:] = rc[:, -1]
    for t in range(t_count):
        inds = np.searchsorted(rc[t], rec_thrs, side="left")
        inside = inds < nd
        precision[t, inside] = env[t, inds[inside]]
    return precision, recall
