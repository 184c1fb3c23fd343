"""COCO box and keypoint metrics for ``kp_eval``: one call from COCO dicts to a JSON-able report.

    from pytest_kpmodel.metrics import evaluate
    m = evaluate(gt, results, sigmas=ks.sigmas, flip_index=ks.flip_index(), names=ks.names)
    m.bbox.AP, m.keypoints["AP50"], m.per_keypoint["left_wrist"]["ap"], m.to_json()

``gt`` is a COCO ground-truth dict (``images``, ``annotations``, ``categories``) and
``results`` a list of COCO result dicts (``image_id``, ``category_id``, ``bbox`` [x, y, w, h],
``score``, ``keypoints`` [x, y, s] * K). Nothing here imports pytest or torch.

What :func:`evaluate` computes
------------------------------
* ``bbox`` / ``keypoints``: pycocotools' 12 box stats (AP, AP50, AP75, APs, APm, APl, AR1,
  AR10, AR100, ARs, ARm, ARl) and 10 keypoint stats (AP, AP50, AP75, APm, APl, AR, AR50,
  AR75, ARm, ARl), -1 where pycocotools gives -1 (no ground truth in that area range).
  Computed by an engine (see below); equal to pycocotools' to 1e-9.
* ``per_keypoint``: per keypoint ``ap``/``ap50``/``ap75`` (COCO keypoint AP with only that
  keypoint in the OKS; definition in :mod:`.analysis`), ``oks`` (mean
  keypoint similarity ``exp(-d^2 / (2 * area * (2 * sigma)^2))`` over detections matched by
  the standard keypoint evaluation: OKS >= 0.5, area all, maxDets 20, non-ignored ground
  truth, keypoint labelled), ``pck@alpha`` over the same matched keypoints and ``n``.
* ``pck``: PCK at alpha in ``pck_alphas`` (default 0.05, 0.1, 0.2): the share of labelled
  keypoints of matched detections (as for ``oks``) whose distance to the ground truth is
  < alpha * max(ground-truth box w, h); pooled over keypoints; plus ``mean_oks`` of the pairs.
* ``pr_curves``: precision at the 101 recall thresholds from the engine's accumulated
  precision (area all, largest maxDets) at IoU/OKS 0.5, 0.75 and the mean over 0.50:0.95;
  categories without ground truth are left out of the mean over categories.
* ``bootstrap``: percentile confidence intervals over images for AP, AP50, AP75 of boxes
  and keypoints (``bootstrap`` replicates, default 200, ``seed``, ``confidence``); only
  accumulation is redone per replicate (:mod:`.bootstrap`).
* ``keypoint_errors``: coco-analyze's keypoint error types per keypoint (good, jitter,
  inversion, swap, miss; :mod:`.analysis`).
* :func:`flip_consistency`: mean OKS between predictions on images and on their horizontal
  mirror images mapped back with the flip index.

Engines
-------
``engine="auto"`` (default; ``--kp-metrics-engine``) uses the fastest installed of hotcoco,
faster-coco-eval, pycocotools; each can be named. All three give pycocotools' stats to 1e-9
(``tests/metrics``: box and keypoints, COCO-17 and custom keypoint counts and sigmas, crowds,
zero-keypoint ground truths, areas on the 32^2/96^2 boundaries, score ties within and across
images and at the maxDets cut, images without ground truth, image subsets, many detections
per image, several categories). The analyses use :mod:`.matching`, a
numpy re-implementation of pycocotools' per-image evaluation checked bit for bit against
pycocotools' ``evalImgs``; when bootstrap runs, its AP is also checked against the engine's.

Input checks: handled as pycocotools handles them, or refused
-------------------------------------------------------------
Refused with :class:`~pytest_kpmodel.errors.DatasetError` naming the annotation id, result
index or key:

* sigma count different from the keypoint count (no sigmas given and K != 17 included),
  non-positive sigmas, a flip index that is not a permutation of the keypoints;
* an annotation without ``area``, or with an area that is not a positive finite number;
* every non-crowd annotation with keypoints having ``area`` == box w*h (the conversion bug
  that inflates keypoint AP; ``allow_box_area=True`` accepts it, with a note: OCHuman's areas
  are box areas);
* a category listing another number of keypoint names than its annotations carry (HumanArt:
  21 names, 17 keypoints): one message with the counts and the first annotation ids;
* ``num_keypoints`` missing or negative, visibility flags other than 0/1/2, a keypoint list
  that is not 3*K numbers;
* missing ``id``/``image_id``/``category_id``/``bbox``/``iscrowd``, duplicate ids, annotation
  id 0 (pycocotools reads 0 as "unmatched"), an image or category id that does not exist,
  a negative box width or height, non-finite numbers;
* results: a missing key, a non-finite score/box/keypoint, an ``image_id`` not in the ground
  truth (pycocotools asserts on these), a box with negative width or height;
* an ``image_ids`` subset naming images that do not exist.

Handled exactly as pycocotools does:

* empty results (or none on the evaluated images): pycocotools' ``loadRes([])`` fails, so
  the result is computed as pycocotools' evaluation of a result set with no detections:
  0 where a category has non-ignored ground truth in the area range, -1 where none has;
* tied scores: detections are ordered by descending score with a stable sort (ties keep
  results order within an image, ascending image id across images), as pycocotools does;
* results whose ``category_id`` is not a ground-truth category are not evaluated (counted in
  ``dataset.ignored_results``); results on images outside ``image_ids`` are not evaluated;
* crowd regions and ground truths whose ``num_keypoints`` is 0 are ignore regions; a
  detection's area (for the area ranges) is its box w*h, as ``loadRes`` sets it;
* ``num_keypoints`` different from the count of keypoints with v > 0 (CrowdPose counts only
  its 12 body joints): pycocotools reads it only to ignore ground truths with 0, and scores
  OKS over the keypoints with v > 0; so does every engine here, and ``dataset.notes`` names
  the annotations (the first 10 ids and the count);
* custom keypoint sets: OKS uses the given sigmas, one per keypoint.

Scope: keypoint metrics run when the ground truth has keypoints (a category lists keypoint
names, or annotations carry ``keypoints``); then every annotation of every category must carry
the same K keypoints (one sigma vector, as in pycocotools) and every result needs
``keypoints``. Every result needs ``bbox`` (pycocotools' keypoint-only ``loadRes`` branch, which
derives boxes from keypoints, is not supported). Ids must be integers (numpy integers pass).

JSON (``KeypointMetrics.to_json()``, kp-report.json ``metrics``)
-----------------------------------------------------------------
::

    {"engine": {"name": "hotcoco", "version": "1.3.0"},
     "dataset": {"images", "annotations", "results", "ignored_results", "categories",
                 "num_keypoints", "sigmas", "flip_index", "notes"},
     "bbox": {"AP": .., "AP50": .., ... "ARl": ..},            # 12, or null
     "keypoints": {"AP": .., ... "ARl": ..},                   # 10, or null
     "per_keypoint": {"nose": {"sigma", "ap", "ap50", "ap75", "oks",
                               "pck@0.05", "pck@0.1", "pck@0.2", "n"}, ...},
     "pck": {"0.05": .., "0.1": .., "0.2": .., "n": .., "pairs": .., "mean_oks": ..},
     "pr_curves": {"recall": [101], "bbox": {"iou50": [101], "iou75": [101], "mean": [101]},
                   "keypoints": {...}},
     "bootstrap": {"replicates": 200, "seed": 0, "confidence": 0.95, "unit": "image",
                   "bbox": {"AP": {"estimate", "low", "high", "std"}, "AP50": .., "AP75": ..},
                   "keypoints": {...}},
     "keypoint_errors": {"settings": {"match_oks": 0.1, "area_range", "max_dets": 20,
                                      "good_ks": 0.85, "jitter_ks": 0.5},
                         "per_keypoint": {"nose": {"good", "jitter", "inversion", "swap",
                                                   "miss", "n"}, ...},
                         "overall": {... shares of all analysed keypoints, "n"},
                         "detections": {"analysed", "with_jitter", "with_inversion",
                                        "with_swap", "with_miss"}}}

Values that do not exist are ``null`` (a keypoint never labelled, analyses switched off),
except the COCO stats and APs, which keep pycocotools' -1.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import DatasetError
from ..keypoints import COCO17, COCO_SIGMAS
from . import analysis
from .bootstrap import Interval
from .bootstrap import bootstrap as _bootstrap
from .engines import (
    BBOX_STATS,
    ENGINES,
    IOU_THRS,
    KEYPOINT_STATS,
    REC_THRS,
    EngineError,
    EngineRun,
    available_engines,
    engine_version,
    resolve_engine,
    run_engine,
)
from .inputs import EvalInput, prepare, show
from .matching import PairCache, mean_exp, oks_terms

__all__ = [
    "BBOX_STATS",
    "ENGINES",
    "KEYPOINT_STATS",
    "CocoStats",
    "EngineError",
    "FlipConsistency",
    "KeypointErrors",
    "KeypointMetrics",
    "PRCurves",
    "PerKeypoint",
    "available_engines",
    "evaluate",
    "flip_consistency",
    "flip_results",
    "image_widths",
    "resolve_engine",
]

DEFAULT_PCK_ALPHAS = (0.05, 0.1, 0.2)


class CocoStats(Mapping[str, float]):
    """The standard COCO stats by name: ``s["AP"]``, ``s.AP``, ``dict(s)``."""

    def __init__(self, iou_type: str, values: Sequence[float]) -> None:
        names = BBOX_STATS if iou_type == "bbox" else KEYPOINT_STATS
        if len(values) != len(names):
            raise ValueError(f"{iou_type} needs {len(names)} stats, got {len(values)}")
        self.iou_type = iou_type
        self._values = {n: float(v) for n, v in zip(names, values, strict=True)}

    def __getitem__(self, name: str) -> float:
        return self._values[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __getattr__(self, name: str) -> float:
        try:
            return self.__dict__["_values"][name]
        except KeyError:
            raise AttributeError(name) from None

    def as_array(self) -> np.ndarray:
        """In pycocotools' ``COCOeval.stats`` order."""
        return np.asarray(list(self._values.values()))

    def to_json(self) -> dict[str, float]:
        return dict(self._values)

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v:.4f}" for k, v in self._values.items())
        return f"CocoStats({self.iou_type}: {inner})"


@dataclass(frozen=True)
class PerKeypoint(Mapping[str, dict[str, Any]]):
    """Per-keypoint results by keypoint name: ``pk["nose"]["ap"]``."""

    names: tuple[str, ...]
    sigmas: tuple[float, ...]
    ap: tuple[float, ...]
    ap50: tuple[float, ...]
    ap75: tuple[float, ...]
    oks: tuple[float | None, ...]
    pck: Mapping[float, tuple[float | None, ...]]
    count: tuple[int, ...]

    def __getitem__(self, name: str) -> dict[str, Any]:
        k = self.names.index(name) if name in self.names else None
        if k is None:
            raise KeyError(name)
        row: dict[str, Any] = {
            "sigma": self.sigmas[k],
            "ap": self.ap[k],
            "ap50": self.ap50[k],
            "ap75": self.ap75[k],
            "oks": self.oks[k],
        }
        for a, vals in self.pck.items():
            row[f"pck@{a:g}"] = vals[k]
        row["n"] = self.count[k]
        return row

    def __iter__(self) -> Iterator[str]:
        return iter(self.names)

    def __len__(self) -> int:
        return len(self.names)

    def to_json(self) -> dict[str, dict[str, Any]]:
        return {n: self[n] for n in self.names}


@dataclass(frozen=True)
class PRCurves:
    """Precision at each recall threshold (area all, largest maxDets), averaged over categories."""

    recall: tuple[float, ...]
    curves: Mapping[str, Mapping[str, tuple[float, ...]]]  # iou type -> iou50 | iou75 | mean

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"recall": list(self.recall)}
        for t, c in self.curves.items():
            out[t] = {k: list(v) for k, v in c.items()}
        return out


@dataclass(frozen=True)
class KeypointErrors:
    """coco-analyze keypoint error shares per keypoint, over matched detections."""

    names: tuple[str, ...]
    count: tuple[int, ...]
    counts: Mapping[str, tuple[int, ...]]  # error type -> per keypoint
    detections: int
    detections_with: Mapping[str, int]

    def share(self, error: str, name: str | None = None) -> float | None:
        """Share of analysed keypoints (of ``name``, or all) with ``error``."""
        c = self.counts[error]
        if name is None:
            total = sum(self.count)
            return sum(c) / total if total else None
        k = self.names.index(name)
        return c[k] / self.count[k] if self.count[k] else None

    def to_json(self) -> dict[str, Any]:
        types = list(self.counts)
        return {
            "settings": {
                "match_oks": analysis.ERROR_MATCH_OKS,
                "area_range": list(analysis.ERROR_AREA_RANGE),
                "max_dets": analysis.KP_MAX_DET,
                "good_ks": analysis.GOOD_KS,
                "jitter_ks": analysis.JITTER_KS,
            },
            "per_keypoint": {
                n: {**{t: self.share(t, n) for t in types}, "n": self.count[k]}
                for k, n in enumerate(self.names)
            },
            "overall": {**{t: self.share(t) for t in types}, "n": sum(self.count)},
            "detections": {
                "analysed": self.detections,
                **{
                    f"with_{t}": (
                        self.detections_with[t] / self.detections if self.detections else None
                    )
                    for t in types
                    if t != "good"
                },
            },
        }


@dataclass(frozen=True)
class KeypointMetrics:
    """Everything :func:`evaluate` computed; ``to_json()`` is kp-report.json's ``metrics``."""

    engine: str
    engine_version: str
    bbox: CocoStats | None
    keypoints: CocoStats | None
    per_keypoint: PerKeypoint | None
    pck: Mapping[str, Any] | None
    pr_curves: PRCurves
    bootstrap: Mapping[str, Mapping[str, Interval]] | None
    keypoint_errors: KeypointErrors | None
    dataset: Mapping[str, Any] = field(default_factory=dict)
    bootstrap_settings: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "engine": {"name": self.engine, "version": self.engine_version},
            "dataset": dict(self.dataset),
            "bbox": self.bbox.to_json() if self.bbox is not None else None,
            "keypoints": self.keypoints.to_json() if self.keypoints is not None else None,
            "per_keypoint": self.per_keypoint.to_json() if self.per_keypoint is not None else None,
            "pck": dict(self.pck) if self.pck is not None else None,
            "pr_curves": self.pr_curves.to_json(),
            "bootstrap": None,
            "keypoint_errors": self.keypoint_errors.to_json() if self.keypoint_errors else None,
        }
        if self.bootstrap is not None:
            out["bootstrap"] = {
                **self.bootstrap_settings,
                **{t: {s: iv.to_json() for s, iv in v.items()} for t, v in self.bootstrap.items()},
            }
        return out


def _pr_curves(runs: Mapping[str, EngineRun]) -> PRCurves:
    curves: dict[str, dict[str, tuple[float, ...]]] = {}
    i50 = int(np.flatnonzero(IOU_THRS == 0.5)[0])
    i75 = int(np.flatnonzero(IOU_THRS == 0.75)[0])
    for t, run in runs.items():
        p = run.precision[:, :, :, 0, -1]  # [T, R, K]
        present = (p > -1).all(axis=(0, 1))
        if present.any():
            q = p[:, :, present]
            c = {
                "iou50": q[i50].mean(axis=-1),
                "iou75": q[i75].mean(axis=-1),
                "mean": q.mean(axis=(0, 2)),
            }
        else:
            c = {k: np.full(len(REC_THRS), -1.0) for k in ("iou50", "iou75", "mean")}
        curves[t] = {k: tuple(float(x) for x in v) for k, v in c.items()}
    return PRCurves(recall=tuple(float(r) for r in REC_THRS), curves=curves)


def evaluate(
    gt: Mapping[str, Any],
    results: Sequence[Mapping[str, Any]],
    *,
    sigmas: Sequence[float] | None = None,
    flip_index: Sequence[int] | None = None,
    names: Sequence[str] | None = None,
    image_ids: Iterable[int] | None = None,
    engine: str = "auto",
    iou_types: Sequence[str] | None = None,
    per_keypoint: bool = True,
    pck_alphas: Sequence[float] = DEFAULT_PCK_ALPHAS,
    bootstrap: int = 200,
    seed: int = 0,
    confidence: float = 0.95,
    error_analysis: bool = True,
    allow_box_area: bool = False,
) -> KeypointMetrics:
    """COCO metrics of ``results`` against ``gt`` (see the module docstring).

    ``sigmas`` default to COCO-17's (then the set must have 17 keypoints); ``flip_index``
    defaults to COCO-17's for 17 keypoints and to no pairs otherwise; ``names`` default to
    the category's keypoint names. ``image_ids`` restricts evaluation to those images.
    ``iou_types`` defaults to ``("bbox", "keypoints")`` when the set has keypoints, else
    ``("bbox",)``. ``bootstrap=0`` skips the intervals; ``per_keypoint``/``error_analysis``
    switch those analyses off.
    """
    if iou_types is not None:
        iou_types = tuple(iou_types)
        unknown = [t for t in iou_types if t not in ("bbox", "keypoints")]
        if unknown or not iou_types:
            raise ValueError(f"iou_types must be 'bbox' and/or 'keypoints', got {iou_types!r}")
    want_kp = None if iou_types is None else ("keypoints" in iou_types)
    name = resolve_engine(engine)
    inp = prepare(
        gt,
        results,
        sigmas=sigmas,
        flip_index=flip_index,
        names=names,
        image_ids=image_ids,
        keypoints=want_kp,
        allow_box_area=allow_box_area,
    )
    if iou_types is None:
        iou_types = ("bbox", "keypoints") if inp.has_keypoints else ("bbox",)
    runs = run_engine(name, inp, iou_types)
    has_kp = "keypoints" in runs

    cache = PairCache(inp)
    pk = pck = errors = boot = None
    if has_kp and per_keypoint:
        ap = analysis.per_keypoint_ap(cache)
        ms = analysis.matched_keypoint_stats(cache, pck_alphas)
        pk = PerKeypoint(
            names=tuple(inp.names),
            sigmas=tuple(float(s) for s in inp.sigmas),
            ap=tuple(ap.ap),
            ap50=tuple(ap.ap50),
            ap75=tuple(ap.ap75),
            oks=tuple(ms.oks),
            pck={a: tuple(v) for a, v in ms.pck.items()},
            count=tuple(ms.count),
        )
        pck = {
            **{f"{a:g}": ms.pck_overall[a] for a in ms.pck_overall},
            "n": sum(ms.count),
            "pairs": ms.pairs,
            "mean_oks": ms.mean_oks,
        }
    if has_kp and error_analysis:
        ec = analysis.keypoint_errors(cache)
        errors = KeypointErrors(
            names=tuple(inp.names),
            count=tuple(int(c) for c in ec.count),
            counts={t: tuple(int(x) for x in v) for t, v in ec.types.items()},
            detections=ec.detections,
            detections_with=dict(ec.detections_with),
        )
    boot_settings: dict[str, Any] = {}
    if bootstrap:
        boot = _bootstrap(
            inp,
            list(runs),
            replicates=int(bootstrap),
            seed=seed,
            confidence=confidence,
            cache=cache,
        )
        _check_against_engine(boot, runs, name)
        boot_settings = {
            "replicates": int(bootstrap),
            "seed": seed,
            "confidence": confidence,
            "unit": "image",
        }
    return KeypointMetrics(
        engine=name,
        engine_version=engine_version(name),
        bbox=CocoStats("bbox", runs["bbox"].stats) if "bbox" in runs else None,
        keypoints=CocoStats("keypoints", runs["keypoints"].stats) if has_kp else None,
        per_keypoint=pk,
        pck=pck,
        pr_curves=_pr_curves(runs),
        bootstrap=boot,
        keypoint_errors=errors,
        dataset=_dataset_info(inp),
        bootstrap_settings=boot_settings,
    )


def _check_against_engine(
    boot: Mapping[str, Mapping[str, Interval]], runs: Mapping[str, EngineRun], name: str
) -> None:
    for t, intervals in boot.items():
        for j, stat in enumerate(("AP", "AP50", "AP75")):
            ours, theirs = intervals[stat].estimate, float(runs[t].stats[j])
            if abs(ours - theirs) > 1e-9:
                raise RuntimeError(
                    f"internal consistency check failed: {t} {stat} from per-image matching is "
                    f"{float(ours)!r} but engine {name} reports {theirs!r}; please report this "
                    "with the data"
                )


def _dataset_info(inp: EvalInput) -> dict[str, Any]:
    return {
        "images": len(inp.image_ids),
        "annotations": len(inp.gts),
        "results": inp.evaluated_results,
        "ignored_results": inp.ignored_results,
        "categories": list(inp.cat_ids),
        "num_keypoints": inp.num_keypoints,
        "sigmas": [float(s) for s in inp.sigmas],
        "flip_index": list(inp.flip_index),
        "notes": list(inp.notes),
    }


# ----------------------------------------------------------------------------- flip consistency
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

    def group(rs: Sequence[Mapping[str, Any]]) -> dict[tuple[int, int], list[Mapping[str, Any]]]:
        g: dict[tuple[int, int], list[Mapping[str, Any]]] = {}
        for r in rs:
            if float(r["score"]) >= min_score:
                g.setdefault((int(r["image_id"]), int(r["category_id"])), []).append(r)
        for v in g.values():
            v.sort(key=lambda r: -float(r["score"]))  # stable: ties keep input order
        return g

    a_groups, b_groups = group(results), group(flipped_results)
    pair_oks: list[float] = []
    ks_rows: list[np.ndarray] = []
    unpaired = 0
    unpaired_b = sum(len(v) for k, v in b_groups.items() if k not in a_groups)
    for key, a_list in a_groups.items():
        b_list = b_groups.get(key, [])
        if not b_list:
            unpaired += len(a_list)
            continue
        ak = np.asarray([r["keypoints"] for r in a_list], dtype=np.float64).reshape(
            len(a_list), k_count, 3
        )
        bk = np.asarray([r["keypoints"] for r in b_list], dtype=np.float64).reshape(
            len(b_list), k_count, 3
        )
        area = np.asarray([float(r["bbox"][2]) * float(r["bbox"][3]) for r in a_list])
        na, nb = len(a_list), len(b_list)
        e = oks_terms(
            np.repeat(bk[None], na, axis=0).reshape(na * nb, k_count, 3),
            np.repeat(ak, nb, axis=0),
            np.repeat(area, nb),
            sig,
        )
        ks = np.exp(-e).reshape(na, nb, k_count)
        oks = mean_exp(e, np.ones(e.shape, dtype=bool)).reshape(na, nb)
        free = np.ones(nb, dtype=bool)
        for i in range(na):
            if not free.any():
                unpaired += na - i
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
