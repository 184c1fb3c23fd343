"""COCO evaluation engines behind one call: pycocotools (the reference), hotcoco, faster-coco-eval.

:func:`run_engine` evaluates an :class:`~.inputs.EvalInput` for ``bbox``
and/or ``keypoints`` with the chosen engine and returns, per type, the summary ``stats`` and
the accumulated ``precision``/``recall`` arrays in pycocotools' layout. Engines are used only
with pycocotools' default parameters (IoU/OKS thresholds, recall thresholds, area ranges,
maxDets), the validated image subset and the given OKS sigmas; with those, every engine here
is checked against pycocotools to 1e-9 on every stat by ``tests/metrics`` (crowds, zero-keypoint
ground truths, area boundaries, score ties, custom keypoint counts, image subsets).

Empty results never reach an engine (pycocotools' ``loadRes([])`` fails): :func:`empty_run`
gives what pycocotools gives for a results set with no detections, 0 where a category has
non-ignored ground truth in the area range and -1 where none has.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import io
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import metadata
from typing import Any

import numpy as np

from ..errors import KpModelError
from .detections import result_columns
from .inputs import EvalInput
from .params import AREA_RANGES, IOU_THRS, MAX_DETS, REC_THRS, stat_names

#: Preference order of ``engine="auto"``: fastest first. All three are pycocotools-exact.
ENGINES: tuple[str, ...] = ("hotcoco", "faster-coco-eval", "pycocotools")
_MODULES = {
    "hotcoco": "hotcoco",
    "faster-coco-eval": "faster_coco_eval",
    "pycocotools": "pycocotools",
}


class EngineError(KpModelError):
    """The requested evaluation engine is unknown or not installed."""


@dataclass(frozen=True)
class EngineRun:
    """One engine's evaluation of one iou type, in pycocotools' layout."""

    iou_type: str
    stats: np.ndarray  # [12] bbox or [10] keypoints
    precision: np.ndarray  # [T, R, K, A, M]
    recall: np.ndarray  # [T, K, A, M]


@functools.cache
def _installed(name: str) -> bool:
    return importlib.util.find_spec(_MODULES[name]) is not None


def available_engines() -> list[str]:
    """The installed engines, fastest first."""
    return [name for name in ENGINES if _installed(name)]


def resolve_engine(name: str = "auto") -> str:
    """``auto`` -> the fastest installed engine; otherwise check that ``name`` is installed."""
    if name == "auto":
        return available_engines()[0]  # pycocotools is a hard dependency
    if name not in ENGINES:
        raise EngineError(
            f"unknown metrics engine {name!r}; choose one of: auto, {', '.join(ENGINES)}"
        )
    if not _installed(name):
        raise EngineError(
            f"metrics engine {name!r} is not installed (pip install {name}); "
            f"installed: {', '.join(available_engines())}"
        )
    return name


@functools.cache
def engine_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:  # pragma: no cover - installed without metadata
        return "unknown"


def run_engine(engine: str, data: EvalInput, iou_types: Sequence[str]) -> dict[str, EngineRun]:
    """Evaluate ``data`` for each of ``iou_types`` with ``engine`` (already resolved)."""
    if data.evaluated_results == 0:  # nothing to evaluate on these images (or no results at all)
        return {t: empty_run(data, t) for t in iou_types}
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        make = _LOADERS[engine](data, iou_types)
        return {t: _summarized(make(t), t) for t in iou_types}


def _summarized(e: Any, iou_type: str) -> EngineRun:
    """Run a configured COCOeval (any engine: they share pycocotools' interface)."""
    e.evaluate()
    e.accumulate()
    e.summarize()
    return EngineRun(
        iou_type=iou_type,
        stats=np.asarray(e.stats, dtype=np.float64)[: len(stat_names(iou_type))].copy(),
        precision=np.asarray(e.eval["precision"], dtype=np.float64),
        recall=np.asarray(e.eval["recall"], dtype=np.float64),
    )


# Each loader reads the inputs once and returns: iou type -> a COCOeval set to the evaluated
# images and the OKS sigmas, with every other parameter at pycocotools' defaults.
MakeEval = Callable[[str], Any]


def _gt_copy(data: EvalInput) -> dict[str, Any]:
    # pycocotools and faster-coco-eval write 'ignore'/'_ignore' into the annotation dicts.
    gt = data.gt
    return {
        "info": gt.get("info", {}),
        "images": list(gt["images"]),
        "annotations": [dict(a) for a in gt["annotations"]],
        "categories": list(gt["categories"]),
    }


def _with_params(
    e: Any, data: EvalInput, iou_type: str, ids_attr: str = "imgIds", sigmas: Any = None
) -> Any:
    """``e`` set to the evaluated images and, for keypoints, the OKS ``sigmas`` (None: the
    engine took them already)."""
    setattr(e.params, ids_attr, list(data.image_ids))
    if sigmas is not None and iou_type == "keypoints":
        e.params.kpt_oks_sigmas = sigmas
    return e


def _pycocotools(data: EvalInput, iou_types: Sequence[str]) -> MakeEval:
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    gt = COCO()
    gt.dataset = _gt_copy(data)
    gt.createIndex()
    dt = gt.loadRes([dict(r) for r in data.results])  # loadRes writes into the dicts
    return lambda t: _with_params(COCOeval(gt, dt, t), data, t, sigmas=data.sigmas.copy())


def _hotcoco(data: EvalInput, iou_types: Sequence[str]) -> MakeEval:
    import hotcoco

    gt = hotcoco.COCO(dict(data.gt))  # hotcoco copies; it never writes into the inputs
    dt = gt.load_res(_hotcoco_results(data.results, iou_types))
    return lambda t: _with_params(
        hotcoco.COCOeval(gt, dt, t), data, t, "img_ids", sigmas=data.sigmas.tolist()
    )


def _hotcoco_results(results: list[Any], iou_types: Sequence[str]) -> list[Any] | np.ndarray:
    """The results in the form hotcoco loads fastest. Box-only results held as columns go as
    its ``[image_id, x, y, w, h, score, category_id]`` array (about 5x faster than 91k dicts;
    it sets area = w*h and numbers them in order, as for dicts). Otherwise a plain list: hotcoco
    reads a list subclass such as ``ResultArrays`` about 10% slower (91k keypoint results)."""
    cols = result_columns(results, 0)
    if cols is not None and "keypoints" not in iou_types:
        return np.column_stack(
            [cols["image_id"], cols["bbox"], cols["score"], cols["category_id"]]
        ).astype(np.float64)
    return results if results.__class__ is list else list(results)


def _faster(data: EvalInput, iou_types: Sequence[str]) -> MakeEval:
    from faster_coco_eval import COCO, COCOeval_faster

    gt = COCO(_gt_copy(data))
    dt = gt.loadRes([dict(r) for r in data.results])
    return lambda t: _with_params(
        COCOeval_faster(
            gt, dt, t, kpt_oks_sigmas=data.sigmas.tolist() if t == "keypoints" else None
        ),
        data,
        t,
    )


_LOADERS: dict[str, Callable[[EvalInput, Sequence[str]], MakeEval]] = {
    "pycocotools": _pycocotools,
    "hotcoco": _hotcoco,
    "faster-coco-eval": _faster,
}


def empty_run(data: EvalInput, iou_type: str) -> EngineRun:
    """pycocotools' result for a results set without detections on the evaluated images.

    accumulate() skips (leaves -1) every category/area whose evaluated images hold no
    non-ignored ground truth; elsewhere precision and recall are 0. summarize() then
    averages the entries > -1.
    """
    ranges, labels = AREA_RANGES[iou_type]
    max_dets = MAX_DETS[iou_type]
    g = data.gts
    ignore = g.iscrowd.copy()
    if iou_type == "keypoints":
        ignore |= g.num_keypoints == 0
    t, r, k, a, m = len(IOU_THRS), len(REC_THRS), len(data.cat_ids), len(ranges), len(max_dets)
    precision = -np.ones((t, r, k, a, m))
    recall = -np.ones((t, k, a, m))
    for ki, cat in enumerate(data.cat_ids):
        for ai, (lo, hi) in enumerate(ranges):
            inside = (g.cat == cat) & ~ignore & (g.area >= lo) & (g.area <= hi)
            if inside.any():
                precision[:, :, ki, ai, :] = 0.0
                recall[:, ki, ai, :] = 0.0
    stats = summarize(precision, recall, iou_type)
    return EngineRun(iou_type=iou_type, stats=stats, precision=precision, recall=recall)


def summarize(precision: np.ndarray, recall: np.ndarray, iou_type: str) -> np.ndarray:
    """pycocotools' COCOeval.summarize() on accumulated arrays (default parameters)."""
    _, labels = AREA_RANGES[iou_type]
    max_dets = MAX_DETS[iou_type]

    def one(ap: bool, iou: float | None = None, area: str = "all", md: int = max_dets[-1]) -> float:
        a = labels.index(area)
        mi = max_dets.index(md)
        s = precision[:, :, :, a, mi] if ap else recall[:, :, a, mi]
        if iou is not None:
            s = s[np.where(iou == IOU_THRS)[0]]
        valid = s[s > -1]
        return -1.0 if valid.size == 0 else float(np.mean(valid))

    if iou_type == "bbox":
        values = [
            one(True), one(True, 0.5), one(True, 0.75),
            one(True, area="small"), one(True, area="medium"), one(True, area="large"),
            one(False, md=1), one(False, md=10), one(False),
            one(False, area="small"), one(False, area="medium"), one(False, area="large"),
        ]  # fmt: skip
    else:
        values = [
            one(True), one(True, 0.5), one(True, 0.75),
            one(True, area="medium"), one(True, area="large"),
            one(False), one(False, 0.5), one(False, 0.75),
            one(False, area="medium"), one(False, area="large"),
        ]  # fmt: skip
    return np.asarray(values, dtype=np.float64)


def auto_engine_note(requested: str) -> str | None:
    """The run header's line when ``auto`` did not find the fastest exact engine: which one it
    chose and how to install the faster ones (every engine is exact: only the time differs).
    None when ``auto`` got the fastest, or an engine was named."""
    if requested != "auto":
        return None
    chosen = resolve_engine("auto")
    faster = ENGINES[: ENGINES.index(chosen)]
    if not faster:
        return None
    slower = (
        " (about 40x slower than hotcoco on a COCO-sized set)" if chosen == "pycocotools" else ""
    )
    return (
        f"kpmodel: metrics engine auto -> {chosen}{slower}: {', '.join(faster)} not installed; "
        "pip install 'pytest-kpmodel[fast]' for the faster exact engines"
    )
