"""COCO results checked (bulk checks first, then the one result at fault is named) and turned
into arrays of the detections on the evaluated images."""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from math import isfinite
from typing import Any

import numpy as np

from ..errors import DatasetError
from .ground_truth import GroundTruthIndex
from .messages import is_int, number_list, show


@dataclass(frozen=True)
class DetectionArrays:
    """Detections on the evaluated images of evaluated categories, in results order."""

    index: np.ndarray  # [N] int64 position in EvalInput.results
    img: np.ndarray  # [N] int64 position of the image in EvalInput.image_ids
    cat: np.ndarray  # [N] int64
    bbox: np.ndarray  # [N, 4] float64
    area: np.ndarray  # [N] float64: w*h, as pycocotools' loadRes sets it for box results
    score: np.ndarray  # [N] float64
    keypoints: np.ndarray | None  # [N, K, 3] float64

    def __len__(self) -> int:
        return len(self.index)


class ResultArrays(list):
    """COCO result dicts (what the engines read) made from columns held as numpy arrays (the
    plugin's predictions): the checks and :func:`detection_arrays` then read the columns at
    numpy speed instead of every dict. The dicts must hold exactly the columns' values
    (``from_columns`` makes both)."""

    columns: dict[str, np.ndarray]

    @classmethod
    def from_columns(cls, image_id: np.ndarray, category_id: int, bbox: np.ndarray,
                     score: np.ndarray, keypoints: np.ndarray) -> ResultArrays:  # fmt: skip
        """``bbox`` [N, 4] x, y, w, h, ``keypoints`` [N, K, 3]; all converted to float64 once,
        and the dicts' numbers are these (Python floats of the same doubles)."""
        n = len(score)
        bbox = np.asarray(bbox, dtype=np.float64).reshape(n, 4)
        score = np.asarray(score, dtype=np.float64).reshape(n)
        keypoints = np.asarray(keypoints, dtype=np.float64)
        keypoints = keypoints.reshape(n, keypoints.shape[1] if keypoints.ndim == 3 else 0, 3)
        image_id = np.asarray(image_id, dtype=np.int64).reshape(n)
        out = cls(
            {"image_id": i, "category_id": category_id, "bbox": b, "score": s, "keypoints": k}
            for i, b, s, k in zip(
                image_id.tolist(),
                bbox.tolist(),
                score.tolist(),
                keypoints.reshape(n, 3 * keypoints.shape[1]).tolist(),
                strict=True,
            )  # fmt: skip
        )
        out.columns = {"image_id": image_id, "category_id": np.full(n, category_id, np.int64),
                       "bbox": bbox, "score": score, "keypoints": keypoints}  # fmt: skip
        return out


def result_columns(results: Any, k: int) -> dict[str, np.ndarray] | None:
    """The columns of a ``ResultArrays`` that still matches them (nobody appended to it)."""
    cols = getattr(results, "columns", None) if isinstance(results, ResultArrays) else None
    if cols is None or len(cols["score"]) != len(results):
        return None
    if k and cols["keypoints"].shape[1] != k:
        return None  # the per-result look names the bad length
    return cols


def _check_columns(
    results: ResultArrays, cols: dict[str, np.ndarray], index: GroundTruthIndex,
    img_pos: Mapping[int, int],
) -> tuple[list[Mapping[str, Any]], int, int] | None:  # fmt: skip
    """``check_results`` on the columns; None when any result fails a check (then the
    per-result look names it) or some category is not evaluated (the general path)."""
    img, box = cols["image_id"], cols["bbox"]
    known = np.fromiter(index.images, dtype=np.int64, count=len(index.images))
    ok = (
        np.isfinite(box).all()
        and (box[:, 2:] >= 0).all()
        and np.isfinite(cols["score"]).all()
        and (not index.k or np.isfinite(cols["keypoints"]).all())
        and np.isin(img, known).all()
        and np.isin(cols["category_id"], list(index.categories)).all()
    )
    if not ok:
        return None
    n = len(results)
    if len(img_pos) == len(index.images):
        evaluated = n
    else:
        evaluated = int(np.isin(img, np.fromiter(img_pos, dtype=np.int64)).sum())
    return results, 0, evaluated


def check_results(
    results: Sequence[Mapping[str, Any]], index: GroundTruthIndex, img_pos: Mapping[int, int]
) -> tuple[list[Mapping[str, Any]], int, int]:
    """Check every result; return (results for the engines, ignored count, evaluated count).

    ``img_pos`` maps the evaluated image ids to their positions."""
    if isinstance(results, (str, bytes, Mapping)) or not isinstance(results, Sequence):
        raise DatasetError(
            f"results must be a list of COCO result dicts, got {type(results).__name__}"
        )
    cols = result_columns(results, index.k)
    if cols is not None:
        checked = _check_columns(results, cols, index, img_pos)  # type: ignore[arg-type]
        if checked is not None:
            return checked
    n = len(results)
    columns = _bulk_check(results, index)
    if columns is None:
        for i, r in enumerate(results):
            _explain_result(i, r, index)  # raises, unless a finite sum merely overflowed
        columns = [r["image_id"] for r in results], [r["category_id"] for r in results]
    imgs, cats = columns
    if set(cats) <= index.categories:
        ignored, kept = 0, list(results)
        evaluated = n if len(img_pos) == len(index.images) else sum(map(img_pos.__contains__, imgs))
    else:
        cat_ok = [c in index.categories for c in cats]
        ignored = n - sum(cat_ok)
        kept = [r for r, c in zip(results, cat_ok, strict=True) if c]
        evaluated = sum(1 for i, c in zip(imgs, cat_ok, strict=True) if c and i in img_pos)
    return kept, ignored, evaluated


def _bulk_check(
    results: Sequence[Mapping[str, Any]], index: GroundTruthIndex
) -> tuple[list[Any], list[Any]] | None:
    """(image ids, category ids) when every result passes the bulk checks (C-level loops),
    else None: then the per-result look names the offending result. NaN and infinities make
    the sums non-finite."""
    n, k = len(results), index.k
    try:
        imgs = [r["image_id"] for r in results]
        cats = [r["category_id"] for r in results]
        boxes = [r["bbox"] for r in results]
        scores = [r["score"] for r in results]
        kps = [r["keypoints"] for r in results] if k else []
        ok = (
            _all_ints(set(map(type, imgs)))
            and _all_ints(set(map(type, cats)))
            and _all_numbers(set(map(type, scores)))
            and set(map(len, boxes)) <= {4}
            and (not k or set(map(len, kps)) <= {3 * k})
            and set(imgs) <= index.images.keys()
        )
        if ok:
            box_arr = np.fromiter(
                itertools.chain.from_iterable(boxes), dtype=np.float64, count=4 * n
            )
            box_arr = box_arr.reshape(n, 4)
            ok = bool(np.isfinite(box_arr).all() and (box_arr[:, 2:] >= 0).all())
            ok = ok and isfinite(sum(scores) + (sum(map(sum, kps)) if k else 0.0))
    except (KeyError, TypeError, ValueError, IndexError):
        return None
    return (imgs, cats) if ok else None


def _all_ints(types: set[type]) -> bool:
    return all(issubclass(t, (int, np.integer)) and t is not bool for t in types)


def _all_numbers(types: set[type]) -> bool:
    return all(
        issubclass(t, (int, float, np.integer, np.floating)) and t is not bool for t in types
    )


def _explain_result(i: int, r: Any, index: GroundTruthIndex) -> None:
    """Raise a DatasetError naming what is wrong with result #i; return if nothing is."""
    k = index.k
    if not isinstance(r, Mapping):
        raise DatasetError(f"result #{i} is not a dict")
    for key in ("image_id", "category_id", "bbox", "score") + (("keypoints",) if k else ()):
        if key not in r:
            raise DatasetError(f"result #{i} has no '{key}'")
    where = f"result #{i} (image_id {show(r.get('image_id'))})"
    for key in ("image_id", "category_id"):
        if not is_int(r[key]):
            raise DatasetError(f"{where}: '{key}' must be an integer, got {show(r[key])}")
    if r["image_id"] not in index.images:
        raise DatasetError(
            f"result #{i}: image_id {show(r['image_id'])} is not in the ground truth's images "
            "(pycocotools refuses results for unknown images)"
        )
    s = r["score"]
    if isinstance(s, bool) or not isinstance(s, (int, float, np.number)) or not math.isfinite(s):
        raise DatasetError(f"{where}: 'score' must be a finite number, got {show(s)}")
    box = number_list(r["bbox"], 4, f"{where}: 'bbox'")
    if box[2] < 0 or box[3] < 0:
        raise DatasetError(f"{where}: 'bbox' has a negative width or height: {box!r}")
    if k:
        number_list(r["keypoints"], 3 * k, f"{where}: 'keypoints'")


def detection_arrays(
    results: Sequence[Mapping[str, Any]], img_pos: Mapping[int, int], k: int
) -> DetectionArrays:
    """Arrays of the (already checked) results on the evaluated images."""
    cols = result_columns(results, k)
    if cols is not None:
        return _column_detections(cols, img_pos, k)
    n = len(results)
    img_ids = np.fromiter((r["image_id"] for r in results), dtype=np.int64, count=n)
    pos = np.fromiter((img_pos.get(i, -1) for i in img_ids.tolist()), dtype=np.int64, count=n)
    index = np.flatnonzero(pos >= 0)
    sel = [results[i] for i in index.tolist()] if len(index) < n else results
    m = len(sel)
    boxes = np.fromiter(
        itertools.chain.from_iterable(r["bbox"] for r in sel), dtype=np.float64, count=4 * m
    )
    boxes = boxes.reshape(m, 4)
    kps = None
    if k:
        flat = itertools.chain.from_iterable(r["keypoints"] for r in sel)
        kps = np.fromiter(flat, dtype=np.float64, count=3 * k * m).reshape(m, k, 3)
    return DetectionArrays(
        index=index,
        img=pos[index],
        cat=np.fromiter((r["category_id"] for r in sel), dtype=np.int64, count=m),
        bbox=boxes,
        area=boxes[:, 2] * boxes[:, 3],
        score=np.fromiter((r["score"] for r in sel), dtype=np.float64, count=m),
        keypoints=kps,
    )


def _column_detections(cols: dict[str, np.ndarray], img_pos: Mapping[int, int], k: int):
    """``detection_arrays`` from the columns of a ``ResultArrays``."""
    ids = np.fromiter(img_pos, dtype=np.int64, count=len(img_pos))
    if not len(ids):
        ids = np.array([-1], dtype=np.int64)  # no evaluated image: nothing is found
        img_pos = {-1: -1}
    order = np.argsort(ids)
    at = np.searchsorted(ids[order], cols["image_id"]).clip(0, max(len(ids) - 1, 0))
    found = ids[order][at] == cols["image_id"]
    pos = np.where(found, np.fromiter(img_pos.values(), dtype=np.int64)[order][at], -1)
    index = np.flatnonzero(pos >= 0)
    boxes = cols["bbox"][index]
    return DetectionArrays(
        index=index,
        img=pos[index],
        cat=cols["category_id"][index],
        bbox=boxes,
        area=boxes[:, 2] * boxes[:, 3],
        score=cols["score"][index],
        keypoints=cols["keypoints"][index] if k else None,
    )
