"""Ground-truth annotations checked one by one and turned into arrays.

A fast pass runs the cheap checks on every annotation; anything odd goes to
:func:`explain_annotation`, which runs every check and raises the precise message naming
the annotation id and key. What pycocotools would silently mis-score (box areas everywhere)
is refused; what it handles its own way (``num_keypoints`` that disagrees with the flags)
is evaluated its way and named in a note.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import chain, repeat
from typing import Any

import numpy as np

from ..errors import DatasetError
from ..keypoint_presets import CROWDPOSE_BODY_JOINTS
from ..keypoints import CROWDPOSE14
from .messages import SHOWN_IDS, id_list, is_int, number_list, show

#: A ground truth's area is "the box" when it equals w*h to this relative tolerance.
BOX_AREA_RTOL = 1e-6


@dataclass(frozen=True)
class GroundTruthArrays:
    """Ground-truth annotations on the evaluated images, in annotation-file order."""

    id: np.ndarray  # [G] int64 annotation ids
    img: np.ndarray  # [G] int64 position of the image in EvalInput.image_ids
    cat: np.ndarray  # [G] int64 category ids
    bbox: np.ndarray  # [G, 4] float64 x, y, w, h
    area: np.ndarray  # [G] float64
    iscrowd: np.ndarray  # [G] bool
    num_keypoints: np.ndarray  # [G] int64 (0 when the set has no keypoints)
    keypoints: np.ndarray | None  # [G, K, 3] float64 x, y, v

    def __len__(self) -> int:
        return len(self.id)


@dataclass(frozen=True)
class GroundTruthIndex:
    """What every annotation and result is checked against."""

    images: Mapping[int, int]  # every image id of the ground truth
    categories: set[int]
    k: int  # keypoints per annotation; 0: keypoints are not evaluated


def ground_truth_arrays(
    anns: list[Any], index: GroundTruthIndex, img_pos: Mapping[int, int]
) -> tuple[GroundTruthArrays, list[str]]:
    """The arrays of the annotations on the evaluated images (``img_pos``: image id ->
    position), and notes on what is handled as pycocotools handles it (num_keypoints that
    disagree with the visibility flags)."""
    ids_l, images_l, cats_l, crowd_l, declared_l = _first_pass(anns, index)
    n_all = len(anns)
    bbox, area, kps = _value_arrays(anns, index)
    ids = np.array(ids_l, dtype=np.int64)
    declared = np.zeros(n_all, dtype=np.int64)
    notes: list[str] = []
    if kps is not None:
        declared = np.array(declared_l, dtype=np.int64)
        note = _num_keypoints_note(ids, declared, kps[:, :, 2] > 0)
        if note:
            notes.append(note)
    img_all = np.fromiter(map(img_pos.get, images_l, repeat(-1)), dtype=np.int64, count=n_all)
    sel = img_all >= 0
    gts = GroundTruthArrays(
        id=ids[sel],
        img=img_all[sel],
        cat=np.array(cats_l, dtype=np.int64)[sel],
        bbox=bbox[sel],
        area=area[sel],
        iscrowd=np.array(crowd_l, dtype=bool)[sel],
        # pycocotools ignores a ground truth when its *declared* num_keypoints is 0
        num_keypoints=declared[sel],
        keypoints=kps[sel] if kps is not None else None,
    )
    return gts, notes


def _first_pass(anns: list[Any], index: GroundTruthIndex) -> tuple[list[Any], ...]:
    """The cheap checks on every annotation; anything odd goes to explain_annotation, which
    runs every check and raises the precise message. Returns the columns it read (ids, image
    ids, category ids, iscrowd, num_keypoints: 0 without keypoints), one pass for all."""
    seen: set[int] = set()
    n_values = 3 * index.k
    ids: list[int] = []
    images: list[int] = []
    cats: list[int] = []
    crowd: list[int] = []
    declared: list[int] = []
    for i, a in enumerate(anns):
        try:
            aid, image_id, cat, is_crowd = a["id"], a["image_id"], a["category_id"], a["iscrowd"]
            ok = (
                aid.__class__ is int
                and aid != 0
                and aid not in seen
                and image_id.__class__ is int
                and image_id in index.images
                and cat.__class__ is int
                and cat in index.categories
                and is_crowd in (0, 1)
                and len(a["bbox"]) == 4
                and a["area"].__class__ in (int, float)
                and _segmentation_ok(a.get("segmentation"))
                and (
                    not index.k
                    or (
                        len(a["keypoints"]) == n_values
                        and a["num_keypoints"].__class__ is int
                        and a["num_keypoints"] >= 0
                    )
                )
            )
        except (KeyError, TypeError, AttributeError):
            ok = False
        if not ok:
            explain_annotation(i, a, index, seen, anns=anns)
        seen.add(aid)
        ids.append(aid)
        images.append(image_id)
        cats.append(cat)
        crowd.append(is_crowd)
        declared.append(a["num_keypoints"] if index.k else 0)
    return ids, images, cats, crowd, declared


def _segmentation_ok(seg: Any) -> bool:
    """Absent, polygons (a list) or an RLE dict with both 'size' and 'counts'. Box and keypoint
    evaluation never read it, but hotcoco parses every annotation's segmentation and refuses
    an RLE without 'size' with a bare ValueError naming only the list position."""
    if seg is None or seg.__class__ is list:
        return True
    return (
        seg.__class__ is dict
        and "counts" in seg
        and seg.get("size").__class__ in (list, tuple)
        and len(seg["size"]) == 2
    )


def _segmentation_problem(seg: Any) -> str | None:
    if _segmentation_ok(seg):
        return None
    if not isinstance(seg, Mapping):
        return f"must be a list of polygons or an RLE dict, got {type(seg).__name__}"
    missing = [k for k in ("size", "counts") if k not in seg]
    if missing:
        return (
            f"is an RLE dict without {' and '.join(repr(k) for k in missing)} "
            "(COCO's RLE is {'size': [height, width], 'counts': ...})"
        )
    return f"has 'size' {show(seg['size'])}; an RLE's size is [height, width]"


def _flat(rows: list[Any], count: int) -> np.ndarray:
    return np.fromiter(chain.from_iterable(rows), dtype=np.float64, count=count)


def _value_arrays(
    anns: list[Any], index: GroundTruthIndex
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Boxes [G, 4], areas [G] and keypoints [G, K, 3] (None without keypoints), each value
    checked: finite, boxes not negative, areas positive, visibility flags 0, 1 or 2."""
    n_all, k = len(anns), index.k
    try:
        # the lengths were checked by the first pass: one flat stream per field converts about
        # twice as fast as np.asarray on a list of lists
        bbox = _flat([a["bbox"] for a in anns], 4 * n_all).reshape(n_all, 4)
        area = np.fromiter((a["area"] for a in anns), dtype=np.float64, count=n_all)
        kps = (
            _flat([a["keypoints"] for a in anns], 3 * k * n_all).reshape(n_all, k, 3) if k else None
        )
    except (TypeError, ValueError):
        for i, a in enumerate(anns):
            explain_annotation(i, a, index, set(), values=True)
        raise
    bad = (
        ~np.isfinite(bbox).all(axis=1)
        | (bbox[:, 2:] < 0).any(axis=1)
        | ~np.isfinite(area)
        | (area <= 0)
    )
    if kps is not None:
        vis = kps[:, :, 2]
        bad |= ~np.isfinite(kps).all(axis=(1, 2)) | ~np.isin(vis, (0.0, 1.0, 2.0)).all(axis=1)
    for i in np.flatnonzero(bad)[:1]:
        explain_annotation(int(i), anns[int(i)], index, set(), values=True)
    return bbox, area, kps


def _num_keypoints_note(ids: np.ndarray, declared: np.ndarray, labelled: np.ndarray) -> str:
    """A warning naming the annotations whose num_keypoints disagrees with their flags ("" if
    none). They are evaluated as pycocotools evaluates them, not refused: pycocotools only
    asks whether num_keypoints == 0 (then the ground truth is an ignore region) and scores
    OKS over the keypoints with v > 0, whatever num_keypoints says."""
    count = labelled.sum(axis=1)
    off = np.flatnonzero(declared != count)
    if not len(off):
        return ""
    k = labelled.shape[1]
    text = (
        f"'num_keypoints' differs from the count of keypoints with v > 0 on {len(off)} of "
        f"{len(ids)} annotations ({id_list(ids[off[:SHOWN_IDS]], len(off))}); evaluated as "
        "pycocotools does: a ground truth is ignored only when its num_keypoints is 0, and OKS "
        "uses its keypoints with v > 0"
    )
    if k == CROWDPOSE14.num_keypoints:
        body = labelled[off, :CROWDPOSE_BODY_JOINTS].sum(axis=1)
        if np.array_equal(body, declared[off]):
            text += (
                f" (each counts only the first {CROWDPOSE_BODY_JOINTS} keypoints, as "
                "CrowdPose's num_keypoints leaves out head and neck)"
            )
    hidden = off[(declared[off] == 0) & (count[off] > 0)]
    if len(hidden):
        text += (
            f"; {len(hidden)} of them are ignored although they have labelled keypoints "
            f"({id_list(ids[hidden[:SHOWN_IDS]], len(hidden))})"
        )
    boxed = off[(declared[off] > 0) & (count[off] == 0)]
    if len(boxed):
        text += (
            f"; {len(boxed)} have num_keypoints > 0 but no labelled keypoint, so OKS is their "
            f"detections' distance to the box ({id_list(ids[boxed[:SHOWN_IDS]], len(boxed))})"
        )
    return text


def explain_annotation(
    i: int,
    a: Any,
    index: GroundTruthIndex,
    seen: set[int],
    values: bool = False,
    anns: Sequence[Any] | None = None,
) -> None:
    """Raise a DatasetError naming what is wrong with annotation ``a``; return if nothing is.
    ``anns`` (all annotations) lets a missing 'area' say how many others lack one."""
    if not isinstance(a, Mapping):
        raise DatasetError(f"annotations[{i}] is not an object")
    aid = a.get("id")
    if not is_int(aid):
        raise DatasetError(f"annotations[{i}] has no integer 'id'")
    where = f"annotation id {show(aid)}"
    if aid == 0:
        raise DatasetError(
            f"{where}: id 0 is not allowed (pycocotools stores matches by annotation id and "
            "reads 0 as 'unmatched', so a match to it would silently count as a miss)"
        )
    if aid in seen:
        raise DatasetError(f"{where} appears twice in 'annotations'")
    required = ("image_id", "category_id", "bbox", "area", "iscrowd")
    if index.k:
        required += ("keypoints", "num_keypoints")
    for key in required:
        if key not in a:
            if key == "area":
                raise DatasetError(_missing_area(where, anns))
            what = " (the set is evaluated for keypoints)" if key == "keypoints" else ""
            raise DatasetError(f"{where} has no '{key}'{what}")
    if not is_int(a["image_id"]) or a["image_id"] not in index.images:
        raise DatasetError(f"{where}: image_id {show(a['image_id'])} is not in 'images'")
    if not is_int(a["category_id"]) or a["category_id"] not in index.categories:
        raise DatasetError(f"{where}: category_id {show(a['category_id'])} is not in 'categories'")
    if a["iscrowd"] not in (0, 1):
        raise DatasetError(f"{where}: 'iscrowd' must be 0 or 1, got {show(a['iscrowd'])}")
    if index.k and (not is_int(a["num_keypoints"]) or a["num_keypoints"] < 0):
        raise DatasetError(
            f"{where}: 'num_keypoints' must be an integer >= 0, got {show(a['num_keypoints'])}"
        )
    seg = _segmentation_problem(a.get("segmentation"))
    if seg:
        raise DatasetError(
            f"{where}: 'segmentation' {seg}; box and keypoint evaluation do not use it, but "
            "the evaluation engines parse it: fix it or drop the key"
        )
    box = number_list(a["bbox"], 4, f"{where}: 'bbox'")
    if box[2] < 0 or box[3] < 0:
        raise DatasetError(f"{where}: 'bbox' has a negative width or height: {show(box)}")
    ar = a["area"]
    if isinstance(ar, bool) or not isinstance(ar, (int, float, np.number)):
        raise DatasetError(f"{where}: 'area' must be a number, got {show(ar)}")
    if values and not (math.isfinite(float(ar)) and float(ar) > 0):
        raise DatasetError(
            f"{where}: 'area' is {show(ar)}; it must be positive (OKS divides by it and the "
            "area ranges test it)"
        )
    if index.k:
        flat = number_list(a["keypoints"], 3 * index.k, f"{where}: 'keypoints'")
        vis = flat[2::3]
        if any(v not in (0.0, 1.0, 2.0) for v in vis):
            odd = sorted({v for v in vis if v not in (0.0, 1.0, 2.0)})
            raise DatasetError(
                f"{where}: keypoint visibility flags must be 0, 1 or 2, got {show(odd)} "
                "(a confidence in the ground truth?)"
            )


def _missing_area(where: str, anns: Sequence[Any] | None) -> str:
    lacking = sum(1 for a in anns if isinstance(a, Mapping) and "area" not in a) if anns else 1
    total = len(anns) if anns else 1
    return (
        f"{where} has no 'area' ({lacking} of {total} annotations have none; CrowdPose's files "
        "carry no area at all). pycocotools needs it: OKS scales distances by it and the area "
        "ranges test it. CrowdPose's own evaluation (crowdposetools, mmpose with "
        "use_area=False) uses 0.53 * box w*h; to do the same, set 'area_from_box = 0.53' under "
        "[dataset] in the card or pass --kp-area-from-box=0.53 (ini kp_area_from_box), or give "
        "every annotation its segment's area"
    )


def box_area_notes(gts: GroundTruthArrays, allow: bool) -> list[str]:
    """Refuse a set whose every area is its box's, unless allowed (then a note says so)."""
    sel = (~gts.iscrowd) & (gts.num_keypoints > 0)
    if sel.sum() < 2:
        return []
    box = gts.bbox[sel, 2] * gts.bbox[sel, 3]
    area = gts.area[sel]
    if not np.all(np.abs(area - box) <= BOX_AREA_RTOL * np.maximum(box, 1.0)):
        return []
    first = int(np.flatnonzero(sel)[0])
    w, h = float(gts.bbox[first, 2]), float(gts.bbox[first, 3])
    if allow:
        return [
            "every annotation's 'area' equals its box w*h; accepted (allow_box_area): OKS "
            "divides distances by the area, and a box is larger than the person in it "
            "(CrowdPose's evaluation takes 0.53 of the box), so OKS and keypoint AP are more "
            "lenient than on COCO-style segment areas; people also move between the medium "
            "and large ranges"
        ]
    raise DatasetError(
        f"every annotation's 'area' equals its box w*h (e.g. annotation id {int(gts.id[first])}: "
        f"area {float(gts.area[first])!r} = {w!r} * {h!r}). COCO's area is the segmented area, "
        "typically about half the box; OKS divides distances by it, so box areas make every "
        "keypoint look closer and inflate keypoint AP (a common conversion bug). Fix the "
        "converter, or, if these areas are intended (OCHuman's are box areas), accept them "
        "with 'allow_box_area = true' under [dataset] in the card, --kp-allow-box-area "
        "(ini kp_allow_box_area) or metrics.evaluate(..., allow_box_area=True)"
    )
