"""Detections and ground truths of one category laid out per image, for vectorised matching.

Order conventions (pycocotools'): detections of an image sorted by descending score, ties
in results order, cut at ``max_det``; ground truths of an image in annotation order. A
layout also lists every (detection, ground truth) pair of the same image, det-major, and
groups the images into buckets of similar ground-truth counts (:class:`Bucket`), so the
greedy matching of :mod:`.matching` runs on padded arrays rather than image by image.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .detections import DetectionArrays
from .ground_truth import GroundTruthArrays


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
    buckets: list[Bucket] = field(default_factory=list)  # images grouped for vectorised matching

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


@dataclass(frozen=True)
class Bucket:
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


def _buckets(lay: Layout) -> list[Bucket]:
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
            Bucket(
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
