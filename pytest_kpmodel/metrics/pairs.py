"""IoU and OKS of every (detection, ground truth) pair of a layout, computed once per category.

:class:`PairCache` holds the layouts and pair similarities that the analyses and the bootstrap
share; each equals pycocotools' ``computeIoU``/``computeOks`` for that pair bit for bit.
"""

from __future__ import annotations

import numpy as np

from .inputs import EvalInput
from .layout import Layout, make_layout
from .oks import box_offsets, exponent, mean_exp


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
            inp, lay = self.inp, self.layout(cat, max_det)
            pd, pg = lay.det[lay.pair_d], lay.gt[lay.pair_g]
            self._sims[key] = box_iou(inp.dets.bbox[pd], inp.gts.bbox[pg], inp.gts.iscrowd[pg])
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
            dxs, dys, gxs, gys, _, _ = self._keypoint_columns()
            dx, dy = dxs[pd], dys[pd]  # gathered copies: exponent() works on them in place
            dx -= gxs[pg]
            dy -= gys[pg]
            e = exponent(dx, dy, inp.gts.area[pg], inp.sigmas)
            del dy
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
        dxs, dys = self._keypoint_columns()[:2]
        e = exponent(*box_offsets(dxs[pd], dys[pd], g.bbox[pg]), g.area[pg], inp.sigmas)
        return mean_exp(e)

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
