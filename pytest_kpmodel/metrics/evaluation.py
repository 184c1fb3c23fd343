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
* :func:`~.flip.flip_consistency` (separate call): mean OKS between predictions on images and
  on their horizontal mirror images mapped back with the flip index.

The COCO stats and PR curves are computed by the call; ``per_keypoint``, ``pck``,
``bootstrap`` and ``keypoint_errors`` when first read (an attribute, ``to_json()``), once: a
gate on AP never pays for the 200 replicates. ``bootstrap=0``, ``per_keypoint=False``,
``error_analysis=False`` make them None.

Engines
-------
``engine="auto"`` (default; ``--kp-metrics-engine``) uses the fastest installed of hotcoco,
faster-coco-eval, pycocotools; each can be named. All three give pycocotools' stats to 1e-9
(``tests/metrics``: box and keypoints, COCO-17 and custom keypoint counts and sigmas, crowds,
zero-keypoint ground truths, areas on the 32^2/96^2 boundaries, score ties within and across
images and at the maxDets cut, images without ground truth, image subsets, many detections
per image, several categories). The analyses use :mod:`.matching` and :mod:`.pairs`, a numpy
re-implementation of pycocotools' per-image evaluation checked bit for bit against
pycocotools' ``evalImgs``; when bootstrap runs, its AP is also checked against the engine's.
Input checks are :mod:`.inputs`'; the OKS formula is :mod:`.oks`'.

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

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from . import analysis
from .bootstrap import Interval
from .bootstrap import bootstrap as _bootstrap
from .engines import EngineRun, engine_version, resolve_engine, run_engine
from .inputs import EvalInput, prepare
from .pairs import PairCache
from .params import I50, I75, REC_THRS
from .results import CocoStats, KeypointErrors, KeypointMetrics, PerKeypoint, PRCurves

DEFAULT_PCK_ALPHAS = (0.05, 0.1, 0.2)


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
    iou_types = _checked_iou_types(iou_types)
    name = resolve_engine(engine)
    inp = prepare(
        gt,
        results,
        sigmas=sigmas,
        flip_index=flip_index,
        names=names,
        image_ids=image_ids,
        keypoints=None if iou_types is None else ("keypoints" in iou_types),
        allow_box_area=allow_box_area,
    )
    if iou_types is None:
        iou_types = ("bbox", "keypoints") if inp.has_keypoints else ("bbox",)
    runs = run_engine(name, inp, iou_types)
    has_kp = "keypoints" in runs
    boot_settings = (
        {"replicates": int(bootstrap), "seed": seed, "confidence": confidence, "unit": "image"}
        if bootstrap
        else {}
    )
    if bootstrap and not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    analyses = _Analyses(
        inp, runs, name, pck_alphas=tuple(pck_alphas), replicates=int(bootstrap), seed=seed,
        confidence=confidence, per_keypoint=has_kp and per_keypoint,
        error_analysis=has_kp and error_analysis,
    )  # fmt: skip
    return KeypointMetrics(
        engine=name,
        engine_version=engine_version(name),
        bbox=CocoStats("bbox", runs["bbox"].stats) if "bbox" in runs else None,
        keypoints=CocoStats("keypoints", runs["keypoints"].stats) if has_kp else None,
        pr_curves=_pr_curves(runs),
        dataset=_dataset_info(inp),
        bootstrap_settings=boot_settings,
        compute=analyses,
    )


class _Analyses:
    """The analyses of one evaluation, computed when ``KeypointMetrics`` is first asked for
    them (a gate, a fixture attribute or the report), sharing one per-image matching cache."""

    def __init__(self, inp: EvalInput, runs: Mapping[str, EngineRun], engine: str, *,
                 pck_alphas: tuple[float, ...], replicates: int, seed: int, confidence: float,
                 per_keypoint: bool, error_analysis: bool) -> None:  # fmt: skip
        self.inp, self.runs, self.engine = inp, dict(runs), engine
        self.pck_alphas, self.replicates, self.seed = pck_alphas, replicates, seed
        self.confidence = confidence
        self.per_keypoint, self.error_analysis = per_keypoint, error_analysis
        self._cache: PairCache | None = None
        self._per_keypoint: tuple[PerKeypoint, dict[str, Any]] | None = None

    @property
    def cache(self) -> PairCache:
        if self._cache is None:
            self._cache = PairCache(self.inp)
        return self._cache

    def __call__(self, name: str) -> Any:
        if name in ("per_keypoint", "pck"):
            if not self.per_keypoint:
                return None
            if self._per_keypoint is None:
                self._per_keypoint = _per_keypoint(self.cache, self.pck_alphas)
            return self._per_keypoint[0 if name == "per_keypoint" else 1]
        if name == "keypoint_errors":
            return _keypoint_errors(self.cache) if self.error_analysis else None
        if name == "bootstrap":
            if not self.replicates:
                return None
            boot = _bootstrap(self.inp, list(self.runs), replicates=self.replicates,
                              seed=self.seed, confidence=self.confidence, cache=self.cache)  # fmt: skip
            _check_against_engine(boot, self.runs, self.engine)
            return boot
        raise AttributeError(name)


def _checked_iou_types(iou_types: Sequence[str] | None) -> tuple[str, ...] | None:
    if iou_types is None:
        return None
    iou_types = tuple(iou_types)
    unknown = [t for t in iou_types if t not in ("bbox", "keypoints")]
    if unknown or not iou_types:
        raise ValueError(f"iou_types must be 'bbox' and/or 'keypoints', got {iou_types!r}")
    return iou_types


def _per_keypoint(
    cache: PairCache, pck_alphas: Sequence[float]
) -> tuple[PerKeypoint, dict[str, Any]]:
    inp = cache.inp
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
    return pk, pck


def _keypoint_errors(cache: PairCache) -> KeypointErrors:
    ec = analysis.keypoint_errors(cache)
    return KeypointErrors(
        names=tuple(cache.inp.names),
        count=tuple(int(c) for c in ec.count),
        counts={t: tuple(int(x) for x in v) for t, v in ec.types.items()},
        detections=ec.detections,
        detections_with=dict(ec.detections_with),
    )


def _pr_curves(runs: Mapping[str, EngineRun]) -> PRCurves:
    curves: dict[str, dict[str, tuple[float, ...]]] = {}
    for t, run in runs.items():
        p = run.precision[:, :, :, 0, -1]  # [T, R, K]
        present = (p > -1).all(axis=(0, 1))
        if present.any():
            q = p[:, :, present]
            c = {
                "iou50": q[I50].mean(axis=-1),
                "iou75": q[I75].mean(axis=-1),
                "mean": q.mean(axis=(0, 2)),
            }
        else:
            c = {k: np.full(len(REC_THRS), -1.0) for k in ("iou50", "iou75", "mean")}
        curves[t] = {k: tuple(float(x) for x in v) for k, v in c.items()}
    return PRCurves(recall=tuple(float(r) for r in REC_THRS), curves=curves)


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
