"""The ground truth's keypoint layout (how many keypoints, their names) and the evaluation's
keypoint settings checked against it: sigmas, flip index, names, and the model's keypoint set."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import DatasetError
from ..keypoints import COCO17, COCO_SIGMAS, PRESETS, KeypointSet
from .messages import SHOWN_IDS, id_list, show


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
                raise DatasetError(
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
        raise DatasetError(
            f"annotation id {show(with_kp.get('id'))}: 'keypoints' must be a flat list "
            f"[x, y, v] * K, got "
            f"{len(kps) if isinstance(kps, (list, tuple)) else show(kps)} values"
        )
    return KeypointLayout(len(kps) // 3, None, f"annotation id {show(with_kp.get('id'))}")


def check_annotation_layout(gt: Mapping[str, Any], layout: KeypointLayout) -> None:
    """One message when annotations carry another keypoint count than the layout declares
    (HumanArt: 21 names in the category, 17 keypoints in 'keypoints')."""
    n = 3 * layout.k
    # `__class__ is dict` first: the Mapping ABC check costs a few times more per annotation
    anns = [a for a in gt["annotations"] if a.__class__ is dict or isinstance(a, Mapping)]
    try:
        lengths = set(map(len, [a["keypoints"] for a in anns if "keypoints" in a]))
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
    raise DatasetError(
        f"{layout.source} lists {layout.k} keypoint names but {len(bad)} of {len(anns)} "
        f"annotations carry {carry} in 'keypoints' "
        f"({id_list([a.get('id') for a in bad[:SHOWN_IDS]], len(bad))}){hint}. The category's "
        "names and every annotation's 'keypoints' must describe the same keypoints: fix the "
        "category's 'keypoints' list or the annotations"
    )


def check_sigmas(sigmas: Sequence[float] | None, k: int) -> np.ndarray:
    if sigmas is None:
        if k != len(COCO_SIGMAS):
            raise DatasetError(
                f"the set has {k} keypoints but no OKS sigmas were given (the COCO default has "
                f"{len(COCO_SIGMAS)}); pass one sigma per keypoint (card [keypoints] sigmas)"
            )
        sigmas = COCO_SIGMAS
    values = [float(s) for s in sigmas]
    if len(values) != k:
        raise DatasetError(
            f"{len(values)} OKS sigmas were given for {k} keypoints; "
            "the sigma count must equal the keypoint count"
        )
    for i, s in enumerate(values):
        if not (math.isfinite(s) and s > 0):
            raise DatasetError(
                f"OKS sigma #{i} is {show(s)}; every sigma must be a positive number"
            )
    return np.asarray(values, dtype=np.float64)


def check_flip_index(flip_index: Sequence[int] | None, k: int) -> list[int]:
    if flip_index is None:
        return COCO17.flip_index() if k == COCO17.num_keypoints else list(range(k))
    perm = [int(i) for i in flip_index]
    if len(perm) != k or sorted(perm) != list(range(k)):
        raise DatasetError(
            f"flip index {show(perm, 40)} is not a permutation of the {k} keypoint indices"
        )
    return perm


@dataclass(frozen=True)
class EvaluatedKeypoints:
    """The keypoints an evaluation scores: none (``k == 0``), or K with checked settings."""

    k: int
    sigmas: np.ndarray  # [K] float64
    flip_index: list[int]  # [K]; identity when no pairs are known
    names: list[str]  # [K]


def evaluated_keypoints(
    gt: Mapping[str, Any],
    keypoints: bool | None,
    sigmas: Sequence[float] | None,
    flip_index: Sequence[int] | None,
    names: Sequence[str] | None,
) -> EvaluatedKeypoints:
    """Whether ``gt``'s keypoints are evaluated (``keypoints=None``: when it has them; ``True``
    requires them) and, if so, the checked sigmas, flip index and names."""
    layout = keypoint_layout(gt)
    if keypoints is True and layout.k == 0:
        raise DatasetError("keypoint metrics were asked for but the ground truth has no keypoints")
    if layout.k == 0 or (keypoints is not None and not keypoints):
        return EvaluatedKeypoints(0, np.zeros(0), [], [])
    k = layout.k
    check_annotation_layout(gt, layout)
    sig = check_sigmas(sigmas, k)
    flip = check_flip_index(flip_index, k)
    return EvaluatedKeypoints(k, sig, flip, keypoint_names(names, layout))


def keypoint_names(names: Sequence[str] | None, layout: KeypointLayout) -> list[str]:
    """The given names, else the category's, else COCO-17's for 17 keypoints, else kp0..."""
    k = layout.k
    if names is not None:
        kp_names = [str(n) for n in names]
        if len(kp_names) != k:
            raise DatasetError(f"{len(kp_names)} keypoint names were given for {k} keypoints")
    elif layout.names is not None:
        kp_names = [str(n) for n in layout.names]
    elif k == COCO17.num_keypoints:
        kp_names = list(COCO17.names)
    else:
        kp_names = [f"kp{i}" for i in range(k)]
    if len(set(kp_names)) != len(kp_names):
        raise DatasetError(f"keypoint names are not unique: {show(kp_names, 40)}")
    return kp_names


def check_keypoint_set(
    layout: KeypointLayout, keypoint_set: KeypointSet, keypoints_from: str
) -> list[str]:
    """The model's keypoint set against the ground truth's layout: refused when the count or
    the order differs (keypoints are matched by position); a note when only names differ."""
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
        raise DatasetError(
            f"{keypoints_from} has {keypoint_set.label} but the ground truth's "
            f"{layout.source} has {layout.k}{listed}. The model's keypoint i is scored "
            f"against the ground truth's keypoint i, so the two must be the same list{hint}"
        )
    if layout.names is not None and layout.names != names:
        if sorted(layout.names) == sorted(names):
            moved = [i for i, (a, b) in enumerate(zip(names, layout.names, strict=True)) if a != b]
            raise DatasetError(
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
    return notes
