"""Checking and normalising COCO ground truth and results before any metric is computed.

:func:`prepare` turns a COCO ground-truth dict and a list of COCO result dicts into an
:class:`EvalInput`: the validated inputs for the evaluation engines plus numpy arrays of
ground truths (:class:`GroundTruthArrays`) and detections (:class:`DetectionArrays`) for
the analyses that work per image. Every refusal is a :class:`~pytest_kpmodel.errors.DatasetError`
naming the annotation id, result index or key. What is refused and what is handled as
pycocotools handles it is listed in :mod:`.evaluation`.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from math import isfinite
from typing import Any

import numpy as np

from ..errors import DatasetError
from ..keypoint_presets import CROWDPOSE_BODY_JOINTS
from ..keypoints import COCO17, COCO_SIGMAS, CROWDPOSE14, PRESETS, KeypointSet

#: pycocotools' area ranges (COCOeval.Params): all, small, medium, large.
AREA_ALL = (0.0, 1e5**2)
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


@dataclass
class EvalInput:
    """Validated evaluation inputs, shared by the engines and the per-image analyses."""

    gt: Mapping[str, Any]
    results: list[Mapping[str, Any]]  # what the engines get (unknown categories removed)
    image_ids: list[int]  # the evaluated images, sorted (pycocotools' params.imgIds)
    cat_ids: list[int]  # every category of the ground truth, sorted (params.catIds)
    has_keypoints: bool
    num_keypoints: int  # K; 0 when the set has no keypoints
    sigmas: np.ndarray  # [K] float64
    flip_index: list[int]  # [K]; identity when no pairs are known
    names: list[str]  # [K]
    gts: GroundTruthArrays
    ignored_results: int = 0  # results whose category is not in the ground truth
    notes: list[str] = field(default_factory=list)
    evaluated_results: int = 0  # results on evaluated images, of ground-truth categories
    _img_pos: dict[int, int] = field(default_factory=dict, repr=False)
    _dets: DetectionArrays | None = field(default=None, repr=False)

    @property
    def dets(self) -> DetectionArrays:
        """Detection arrays, built on first use (the engines do not need them)."""
        if self._dets is None:
            self._dets = _detection_arrays(
                self.results, self._img_pos, self.num_keypoints if self.has_keypoints else 0
            )
        return self._dets


def _fail(message: str) -> DatasetError:
    return DatasetError(message)


#: How many annotation ids a warning or refusal lists before it gives only the count.
SHOWN_IDS = 10


def _plain(value: Any) -> Any:
    """Numpy scalars and arrays (in lists too) as Python numbers and lists, for messages."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def show(value: Any, limit: int = 12) -> str:
    """``repr`` of a value in a message: plain Python numbers (never ``np.float64(...)``), a
    long list cut after ``limit`` items with its length."""
    v = _plain(value)
    if isinstance(v, list) and len(v) > limit:
        return f"[{', '.join(map(repr, v[:limit]))}, ...] ({len(v)} values)"
    return repr(v)


def id_list(ids: Sequence[Any], total: int | None = None) -> str:
    """``ids 3, 7, 9 and 12 more``: at most SHOWN_IDS ids, then the count."""
    ids = [_plain(i) for i in ids]
    total = len(ids) if total is None else total
    head = ", ".join(str(i) for i in ids[:SHOWN_IDS])
    more = f" and {total - min(total, SHOWN_IDS)} more" if total > SHOWN_IDS else ""
    return f"id{'s' if total != 1 else ''} {head}{more}"


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _number_list(value: Any, length: int, what: str) -> list[float]:
    if not isinstance(value, (list, tuple, np.ndarray)) or len(value) != length:
        got = len(value) if isinstance(value, (list, tuple, np.ndarray)) else type(value).__name__
        raise _fail(f"{what} must be a list of {length} numbers, got {got}")
    try:
        numbers = [float(v) for v in value]
    except (TypeError, ValueError):
        raise _fail(f"{what} must contain only numbers, got {show(list(value))}") from None
    if not all(math.isfinite(v) for v in numbers):
        raise _fail(f"{what} contains a non-finite value: {show(numbers)}")
    return numbers


@dataclass(frozen=True)
class KeypointLayout:
    """The ground truth's keypoints: how many, their names, and where that was read."""

    k: int  # 0: no keypoints
    names: list[str] | None  # from the first category listing keypoint names
    source: str  # for messages: "category 1 'person'" or "annotation id 7"


def keypoint_layout(gt: Mapping[str, Any]) -> KeypointLayout:
    """The keypoint layout of a COCO ground truth (from its categories, else its annotations)."""
    declared: list[tuple[Any, Any, list[str]]] = [
        (c.get("id"), c.get("name"), list(c["keypoints"]))
        for c in gt["categories"]
        if isinstance(c, Mapping) and c.get("keypoints")
    ]
    if declared:
        first_id, first_name, names = declared[0]
        for cat_id, _, other in declared[1:]:
            if len(other) != len(names):
                raise _fail(
                    f"categories {show(first_id)} and {show(cat_id)} declare {len(names)} and "
                    f"{len(other)} keypoints; one evaluation needs one keypoint layout (one "
                    "sigma per keypoint)"
                )
        source = f"category {show(first_id)}" + (f" {show(first_name)}" if first_name else "")
        return KeypointLayout(len(names), [str(n) for n in names], source)
    with_kp = next(
        (a for a in gt["annotations"] if isinstance(a, Mapping) and "keypoints" in a), None
    )
    if with_kp is None:
        return KeypointLayout(0, None, "")
    kps = with_kp["keypoints"]
    if not isinstance(kps, (list, tuple)) or len(kps) % 3 or not kps:
        raise _fail(
            f"annotation id {show(with_kp.get('id'))}: 'keypoints' must be a flat list "
            f"[x, y, v] * K, got "
            f"{len(kps) if isinstance(kps, (list, tuple)) else show(kps)} values"
        )
    return KeypointLayout(len(kps) // 3, None, f"annotation id {show(with_kp.get('id'))}")


def _check_annotation_layout(gt: Mapping[str, Any], layout: KeypointLayout) -> None:
    """One message when annotations carry another keypoint count than the layout declares
    (HumanArt: 21 names in the category, 17 keypoints in 'keypoints')."""
    n = 3 * layout.k
    anns = [a for a in gt["annotations"] if isinstance(a, Mapping)]
    try:
        lengths = set(map(len, (a["keypoints"] for a in anns if "keypoints" in a)))
    except TypeError:
        return  # a 'keypoints' that is not a list: the per-annotation checks name it
    if lengths <= {n}:
        return
    bad = [a for a in anns if len(a.get("keypoints", [0] * n)) != n]
    common = Counter(len(a["keypoints"]) for a in bad).most_common(1)[0][0]
    carry = f"{common // 3} keypoints ({common} values)" if common % 3 == 0 else f"{common} values"
    other = next(
        (key for key, v in bad[0].items()
         if key != "keypoints" and isinstance(v, list) and len(v) == n),
        None,
    )  # fmt: skip
    hint = (
        f"; they also carry {other!r} with {n} values, the layout the names describe (the "
        "plugin evaluates 'keypoints')"
        if other
        else ""
    )
    raise _fail(
        f"{layout.source} lists {layout.k} keypoint names but {len(bad)} of {len(anns)} "
        f"annotations carry {carry} in 'keypoints' "
        f"({id_list([a.get('id') for a in bad[:SHOWN_IDS]], len(bad))}){hint}. The category's "
        "names and every annotation's 'keypoints' must describe the same keypoints: fix the "
        "category's 'keypoints' list or the annotations"
    )


def _check_sigmas(sigmas: Sequence[float] | None, k: int) -> np.ndarray:
    if sigmas is None:
        if k != len(COCO_SIGMAS):
            raise _fail(
                f"the set has {k} keypoints but no OKS sigmas were given (the COCO default has "
                f"{len(COCO_SIGMAS)}); pass one sigma per keypoint (card [keypoints] sigmas)"
            )
        sigmas = COCO_SIGMAS
    values = [float(s) for s in sigmas]
    if len(values) != k:
        raise _fail(
            f"{len(values)} OKS sigmas were given for {k} keypoints; "
            "the sigma count must equal the keypoint count"
        )
    for i, s in enumerate(values):
        if not (math.isfinite(s) and s > 0):
            raise _fail(f"OKS sigma #{i} is {show(s)}; every sigma must be a positive number")
    return np.asarray(values, dtype=np.float64)


def _check_flip_index(flip_index: Sequence[int] | None, k: int) -> list[int]:
    if flip_index is None:
        return COCO17.flip_index() if k == COCO17.num_keypoints else list(range(k))
    perm = [int(i) for i in flip_index]
    if len(perm) != k or sorted(perm) != list(range(k)):
        raise _fail(f"flip index {show(perm, 40)} is not a permutation of the {k} keypoint indices")
    return perm


def prepare(
    gt: Mapping[str, Any],
    results: Sequence[Mapping[str, Any]],
    *,
    sigmas: Sequence[float] | None = None,
    flip_index: Sequence[int] | None = None,
    names: Sequence[str] | None = None,
    image_ids: Iterable[int] | None = None,
    keypoints: bool | None = None,
    allow_box_area: bool = False,
) -> EvalInput:
    """Validate ``gt`` and ``results`` and build the arrays the analyses use.

    ``keypoints=None`` evaluates keypoints when the set has them; ``True`` requires them.
    """
    if not isinstance(gt, Mapping):
        raise _fail(f"ground truth must be a COCO dict, got {type(gt).__name__}")
    for key in ("images", "annotations", "categories"):
        if not isinstance(gt.get(key), list):
            raise _fail(f"ground truth has no '{key}' list")
    all_images: dict[int, int] = {}
    for i, im in enumerate(gt["images"]):
        if not isinstance(im, Mapping) or not _is_int(im.get("id")):
            raise _fail(f"images[{i}] has no integer 'id'")
        if int(im["id"]) in all_images:
            raise _fail(f"image id {im['id']} appears twice in 'images'")
        all_images[int(im["id"])] = i
    cat_ids: list[int] = []
    for i, c in enumerate(gt["categories"]):
        if not isinstance(c, Mapping) or not _is_int(c.get("id")):
            raise _fail(f"categories[{i}] has no integer 'id'")
        cat_ids.append(int(c["id"]))
    if len(set(cat_ids)) != len(cat_ids):
        raise _fail(f"category ids are not unique: {show(cat_ids, 40)}")
    cat_set = set(cat_ids)
    if image_ids is None:
        evaluated = sorted(all_images)
    else:
        evaluated = sorted({int(i) for i in image_ids})
        missing = [i for i in evaluated if i not in all_images]
        if missing:
            raise _fail(
                f"image subset names image ids not in the ground truth: {show(missing[:10])}"
            )
    img_pos = {img: n for n, img in enumerate(evaluated)}

    layout = keypoint_layout(gt)
    has_kp, k, cat_names = layout.k > 0, layout.k, layout.names
    if keypoints is True and not has_kp:
        raise _fail("keypoint metrics were asked for but the ground truth has no keypoints")
    evaluate_kp = has_kp if keypoints is None else bool(keypoints) and has_kp
    if evaluate_kp:
        _check_annotation_layout(gt, layout)
    sig = _check_sigmas(sigmas, k) if evaluate_kp else np.zeros(0)
    flip = _check_flip_index(flip_index, k) if evaluate_kp else []
    if names is not None:
        kp_names = [str(n) for n in names]
        if evaluate_kp and len(kp_names) != k:
            raise _fail(f"{len(kp_names)} keypoint names were given for {k} keypoints")
    elif cat_names is not None:
        kp_names = [str(n) for n in cat_names]
    elif k == COCO17.num_keypoints:
        kp_names = list(COCO17.names)
    else:
        kp_names = [f"kp{i}" for i in range(k)]
    if evaluate_kp and len(set(kp_names)) != len(kp_names):
        raise _fail(f"keypoint names are not unique: {show(kp_names, 40)}")

    gts, notes = _ground_truth_arrays(
        gt["annotations"], all_images, img_pos, cat_set, evaluate_kp, k
    )
    if evaluate_kp:
        notes += _box_area(gts, allow_box_area)
    kept, ignored, evaluated_results = _check_results(
        results, all_images, img_pos, cat_set, k if evaluate_kp else 0
    )
    if ignored:
        notes.append(
            f"{ignored} results have a category_id not in the ground truth's categories; "
            "they are not evaluated (as in pycocotools)"
        )
    return EvalInput(
        gt=gt,
        results=kept,
        image_ids=evaluated,
        cat_ids=sorted(cat_ids),
        has_keypoints=evaluate_kp,
        num_keypoints=k if evaluate_kp else 0,
        sigmas=sig,
        flip_index=flip,
        names=kp_names if evaluate_kp else [],
        gts=gts,
        ignored_results=ignored,
        notes=notes,
        evaluated_results=evaluated_results,
        _img_pos=img_pos,
    )


def check_ground_truth(
    gt: Mapping[str, Any],
    keypoint_set: KeypointSet,
    *,
    allow_box_area: bool = False,
    keypoints_from: str = "the keypoint set",
) -> list[str]:
    """Every check :func:`prepare` makes on the ground truth, plus its match with the model's
    keypoint set, without results: run before any prediction, so a bad annotation file is
    refused in seconds rather than after the inference. Returns the notes (warnings) the
    evaluation will carry; raises DatasetError on what it refuses. ``keypoints_from`` names
    the keypoint set in messages (e.g. "the card's [keypoints]")."""
    for key in ("images", "annotations", "categories"):
        if not isinstance(gt.get(key), list):
            raise _fail(f"ground truth has no '{key}' list")
    layout = keypoint_layout(gt)
    if layout.k == 0:
        raise _fail("the ground truth has no keypoints (no category lists keypoint names)")
    _check_annotation_layout(gt, layout)
    names = list(keypoint_set.names)
    notes = []
    if len(names) != layout.k:
        listed = (
            f" ({', '.join(layout.names[:3])}, ..., {layout.names[-1]})"
            if layout.names and len(layout.names) > 4
            else (f" ({', '.join(layout.names)})" if layout.names else "")
        )
        fits = [p for p, ks in PRESETS.items() if layout.names == list(ks.names)]
        hint = (
            f"; these are preset {fits[0]}'s: set preset = {fits[0]!r} under [keypoints]"
            if fits
            else ": a preset under [keypoints], or names and sigmas of your own"
        )
        raise _fail(
            f"{keypoints_from} has {keypoint_set.label} but the ground truth's "
            f"{layout.source} has {layout.k}{listed}. The model's keypoint i is scored "
            f"against the ground truth's keypoint i, so the two must be the same list{hint}"
        )
    if layout.names is not None and layout.names != names:
        if sorted(layout.names) == sorted(names):
            moved = [i for i, (a, b) in enumerate(zip(names, layout.names, strict=True)) if a != b]
            raise _fail(
                f"{keypoints_from} and the ground truth's {layout.source} name the same "
                f"keypoints in another order (first at #{moved[0]}: {names[moved[0]]!r} vs "
                f"{layout.names[moved[0]]!r}); keypoints are matched by position, so the "
                "model's would be scored against the wrong ones"
            )
        diff = [i for i, (a, b) in enumerate(zip(names, layout.names, strict=True)) if a != b]
        shown = ", ".join(f"#{i} {names[i]!r} vs {layout.names[i]!r}" for i in diff[:3])
        notes.append(
            f"{keypoints_from} and the ground truth's {layout.source} name {len(diff)} "
            f"keypoints differently ({shown}{', ...' if len(diff) > 3 else ''}); keypoints are "
            "matched by position, and reports use the model's names"
        )
    inp = prepare(
        gt,
        [],
        sigmas=keypoint_set.sigmas,
        flip_index=keypoint_set.flip_index(),
        names=keypoint_set.names,
        keypoints=True,
        allow_box_area=allow_box_area,
    )
    return notes + inp.notes


def _ground_truth_arrays(
    anns: list[Any],
    all_images: Mapping[int, int],
    img_pos: Mapping[int, int],
    cat_set: set[int],
    with_kp: bool,
    k: int,
) -> tuple[GroundTruthArrays, list[str]]:
    """The arrays of the annotations on the evaluated images, and notes on what is handled
    as pycocotools handles it (num_keypoints that disagree with the visibility flags)."""
    # One fast pass with the cheap checks; anything odd goes to _explain_annotation, which
    # runs every check and raises the precise message.
    seen: set[int] = set()
    n_values = 3 * k
    for i, a in enumerate(anns):
        try:
            aid = a["id"]
            ok = (
                aid.__class__ is int
                and aid != 0
                and aid not in seen
                and a["image_id"].__class__ is int
                and a["image_id"] in all_images
                and a["category_id"].__class__ is int
                and a["category_id"] in cat_set
                and a["iscrowd"] in (0, 1)
                and len(a["bbox"]) == 4
                and a["area"].__class__ in (int, float)
                and (
                    not with_kp
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
            _explain_annotation(i, a, all_images, cat_set, seen, with_kp, k, anns=anns)
        seen.add(a["id"])
    n_all = len(anns)
    try:
        bbox = np.asarray([a["bbox"] for a in anns], dtype=np.float64).reshape(n_all, 4)
        area = np.asarray([a["area"] for a in anns], dtype=np.float64).reshape(n_all)
        kps = (
            np.asarray([a["keypoints"] for a in anns], dtype=np.float64).reshape(n_all, k, 3)
            if with_kp
            else None
        )
    except (TypeError, ValueError):
        for i, a in enumerate(anns):
            _explain_annotation(i, a, all_images, cat_set, set(), with_kp, k, values=True)
        raise
    bad = (
        ~np.isfinite(bbox).all(axis=1)
        | (bbox[:, 2:] < 0).any(axis=1)
        | ~np.isfinite(area)
        | (area <= 0)
    )
    declared = np.zeros(n_all, dtype=np.int64)
    notes: list[str] = []
    if kps is not None:
        vis = kps[:, :, 2]
        declared = np.fromiter((a["num_keypoints"] for a in anns), dtype=np.int64, count=n_all)
        bad |= ~np.isfinite(kps).all(axis=(1, 2)) | ~np.isin(vis, (0.0, 1.0, 2.0)).all(axis=1)
    for i in np.flatnonzero(bad)[:1]:
        _explain_annotation(
            int(i), anns[int(i)], all_images, cat_set, set(), with_kp, k, values=True
        )
    ids = np.fromiter((a["id"] for a in anns), dtype=np.int64, count=n_all)
    if kps is not None:
        note = _num_keypoints_note(ids, declared, kps[:, :, 2] > 0)
        if note:
            notes.append(note)
    img_all = np.fromiter(
        (img_pos.get(a["image_id"], -1) for a in anns), dtype=np.int64, count=n_all
    )
    sel = img_all >= 0
    gts = GroundTruthArrays(
        id=ids[sel],
        img=img_all[sel],
        cat=np.fromiter((a["category_id"] for a in anns), dtype=np.int64, count=n_all)[sel],
        bbox=bbox[sel],
        area=area[sel],
        iscrowd=np.fromiter((a["iscrowd"] for a in anns), dtype=bool, count=n_all)[sel],
        # pycocotools ignores a ground truth when its *declared* num_keypoints is 0
        num_keypoints=declared[sel],
        keypoints=kps[sel] if kps is not None else None,
    )
    return gts, notes


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


def _explain_annotation(
    i: int,
    a: Any,
    all_images: Mapping[int, int],
    cat_set: set[int],
    seen: set[int],
    with_kp: bool,
    k: int,
    values: bool = False,
    anns: Sequence[Any] | None = None,
) -> None:
    """Raise a DatasetError naming what is wrong with annotation ``a``; return if nothing is.
    ``anns`` (all annotations) lets a missing 'area' say how many others lack one."""
    if not isinstance(a, Mapping):
        raise _fail(f"annotations[{i}] is not an object")
    aid = a.get("id")
    if not _is_int(aid):
        raise _fail(f"annotations[{i}] has no integer 'id'")
    where = f"annotation id {show(aid)}"
    if aid == 0:
        raise _fail(
            f"{where}: id 0 is not allowed (pycocotools stores matches by annotation id and "
            "reads 0 as 'unmatched', so a match to it would silently count as a miss)"
        )
    if aid in seen:
        raise _fail(f"{where} appears twice in 'annotations'")
    required = ("image_id", "category_id", "bbox", "area", "iscrowd")
    if with_kp:
        required += ("keypoints", "num_keypoints")
    for key in required:
        if key not in a:
            if key == "area":
                raise _fail(_missing_area(where, anns))
            what = " (the set is evaluated for keypoints)" if key == "keypoints" else ""
            raise _fail(f"{where} has no '{key}'{what}")
    if not _is_int(a["image_id"]) or a["image_id"] not in all_images:
        raise _fail(f"{where}: image_id {show(a['image_id'])} is not in 'images'")
    if not _is_int(a["category_id"]) or a["category_id"] not in cat_set:
        raise _fail(f"{where}: category_id {show(a['category_id'])} is not in 'categories'")
    if a["iscrowd"] not in (0, 1):
        raise _fail(f"{where}: 'iscrowd' must be 0 or 1, got {show(a['iscrowd'])}")
    if with_kp and (not _is_int(a["num_keypoints"]) or a["num_keypoints"] < 0):
        raise _fail(
            f"{where}: 'num_keypoints' must be an integer >= 0, got {show(a['num_keypoints'])}"
        )
    box = _number_list(a["bbox"], 4, f"{where}: 'bbox'")
    if box[2] < 0 or box[3] < 0:
        raise _fail(f"{where}: 'bbox' has a negative width or height: {show(box)}")
    ar = a["area"]
    if isinstance(ar, bool) or not isinstance(ar, (int, float, np.number)):
        raise _fail(f"{where}: 'area' must be a number, got {show(ar)}")
    if values and not (math.isfinite(float(ar)) and float(ar) > 0):
        raise _fail(
            f"{where}: 'area' is {show(ar)}; it must be positive (OKS divides by it and the "
            "area ranges test it)"
        )
    if with_kp:
        flat = _number_list(a["keypoints"], 3 * k, f"{where}: 'keypoints'")
        vis = flat[2::3]
        if any(v not in (0.0, 1.0, 2.0) for v in vis):
            odd = sorted({v for v in vis if v not in (0.0, 1.0, 2.0)})
            raise _fail(
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


def _box_area(gts: GroundTruthArrays, allow: bool) -> list[str]:
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
    raise _fail(
        f"every annotation's 'area' equals its box w*h (e.g. annotation id {int(gts.id[first])}: "
        f"area {float(gts.area[first])!r} = {w!r} * {h!r}). COCO's area is the segmented area, "
        "typically about half the box; OKS divides distances by it, so box areas make every "
        "keypoint look closer and inflate keypoint AP (a common conversion bug). Fix the "
        "converter, or, if these areas are intended (OCHuman's are box areas), accept them "
        "with 'allow_box_area = true' under [dataset] in the card, --kp-allow-box-area "
        "(ini kp_allow_box_area) or metrics.evaluate(..., allow_box_area=True)"
    )


def _check_results(
    results: Sequence[Mapping[str, Any]],
    all_images: Mapping[int, int],
    img_pos: Mapping[int, int],
    cat_set: set[int],
    k: int,
) -> tuple[list[Mapping[str, Any]], int, int]:
    """Check every result; return (results for the engines, ignored count, evaluated count)."""
    if isinstance(results, (str, bytes, Mapping)) or not isinstance(results, Sequence):
        raise _fail(f"results must be a list of COCO result dicts, got {type(results).__name__}")
    n = len(results)

    def find_culprit() -> None:
        for i, r in enumerate(results):
            _explain_result(i, r, all_images, k)

    # Bulk checks (C-level loops); the first failure sends us through the per-result look
    # that names the offending result. NaN and infinities make the sums non-finite.
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
            and set(imgs) <= all_images.keys()
        )
        if ok:
            box_arr = np.fromiter(
                itertools.chain.from_iterable(boxes), dtype=np.float64, count=4 * n
            )
            box_arr = box_arr.reshape(n, 4)
            ok = bool(np.isfinite(box_arr).all() and (box_arr[:, 2:] >= 0).all())
            ok = ok and isfinite(sum(scores) + (sum(map(sum, kps)) if k else 0.0))
    except (KeyError, TypeError, ValueError, IndexError):
        ok = False
    if not ok:
        find_culprit()  # raises, unless a finite sum merely overflowed
        imgs = [r["image_id"] for r in results]
        cats = [r["category_id"] for r in results]
    if set(cats) <= cat_set:
        ignored, kept = 0, list(results)
        evaluated = n if len(img_pos) == len(all_images) else sum(map(img_pos.__contains__, imgs))
    else:
        cat_ok = [c in cat_set for c in cats]
        ignored = n - sum(cat_ok)
        kept = [r for r, c in zip(results, cat_ok, strict=True) if c]
        evaluated = sum(1 for i, c in zip(imgs, cat_ok, strict=True) if c and i in img_pos)
    return kept, ignored, evaluated


def _all_ints(types: set[type]) -> bool:
    return all(issubclass(t, (int, np.integer)) and t is not bool for t in types)


def _all_numbers(types: set[type]) -> bool:
    return all(
        issubclass(t, (int, float, np.integer, np.floating)) and t is not bool for t in types
    )


def _explain_result(i: int, r: Any, all_images: Mapping[int, int], k: int) -> None:
    """Raise a DatasetError naming what is wrong with result #i; return if nothing is."""
    if not isinstance(r, Mapping):
        raise _fail(f"result #{i} is not a dict")
    for key in ("image_id", "category_id", "bbox", "score") + (("keypoints",) if k else ()):
        if key not in r:
            raise _fail(f"result #{i} has no '{key}'")
    where = f"result #{i} (image_id {show(r.get('image_id'))})"
    for key in ("image_id", "category_id"):
        if not _is_int(r[key]):
            raise _fail(f"{where}: '{key}' must be an integer, got {show(r[key])}")
    if r["image_id"] not in all_images:
        raise _fail(
            f"result #{i}: image_id {show(r['image_id'])} is not in the ground truth's images "
            "(pycocotools refuses results for unknown images)"
        )
    s = r["score"]
    if isinstance(s, bool) or not isinstance(s, (int, float, np.number)) or not math.isfinite(s):
        raise _fail(f"{where}: 'score' must be a finite number, got {show(s)}")
    box = _number_list(r["bbox"], 4, f"{where}: 'bbox'")
    if box[2] < 0 or box[3] < 0:
        raise _fail(f"{where}: 'bbox' has a negative width or height: {box!r}")
    if k:
        _number_list(r["keypoints"], 3 * k, f"{where}: 'keypoints'")


def _detection_arrays(
    results: Sequence[Mapping[str, Any]], img_pos: Mapping[int, int], k: int
) -> DetectionArrays:
    """Arrays of the (already checked) results on the evaluated images."""
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
