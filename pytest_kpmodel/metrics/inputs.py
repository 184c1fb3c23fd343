"""Checking and normalising COCO ground truth and results before any metric is computed.

:func:`prepare` turns a COCO ground-truth dict and a list of COCO result dicts into an
:class:`EvalInput`: the validated inputs for the evaluation engines plus numpy arrays of
ground truths (:class:`GroundTruthArrays`) and detections (:class:`DetectionArrays`) for
the analyses that work per image. Every refusal is a :class:`~pytest_kpmodel.errors.DatasetError`
naming the annotation id, result index or key. What is refused and what is handled as
pycocotools handles it is listed in :mod:`.evaluation`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import DatasetError
from ..keypoints import KeypointSet
from .detections import DetectionArrays, check_results, detection_arrays
from .ground_truth import (
    GroundTruthArrays,
    GroundTruthIndex,
    box_area_notes,
    ground_truth_arrays,
)
from .keypoint_layout import (
    check_annotation_layout,
    check_keypoint_set,
    evaluated_keypoints,
    keypoint_layout,
)
from .messages import is_int, show


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
            self._dets = detection_arrays(
                self.results, self._img_pos, self.num_keypoints if self.has_keypoints else 0
            )
        return self._dets


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
    _check_lists(gt)
    all_images = _image_index(gt["images"])
    cat_ids = _category_ids(gt["categories"])
    evaluated = _evaluated_images(all_images, image_ids)
    img_pos = {img: n for n, img in enumerate(evaluated)}
    kp = evaluated_keypoints(gt, keypoints, sigmas, flip_index, names)

    index = GroundTruthIndex(all_images, set(cat_ids), kp.k)
    gts, notes = ground_truth_arrays(gt["annotations"], index, img_pos)
    if kp.k:
        notes += box_area_notes(gts, allow_box_area)
    kept, ignored, evaluated_results = check_results(results, index, img_pos)
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
        has_keypoints=kp.k > 0,
        num_keypoints=kp.k,
        sigmas=kp.sigmas,
        flip_index=kp.flip_index,
        names=kp.names,
        gts=gts,
        ignored_results=ignored,
        notes=notes,
        evaluated_results=evaluated_results,
        _img_pos=img_pos,
    )


def _check_lists(gt: Any) -> None:
    if not isinstance(gt, Mapping):
        raise DatasetError(f"ground truth must be a COCO dict, got {type(gt).__name__}")
    for key in ("images", "annotations", "categories"):
        if not isinstance(gt.get(key), list):
            raise DatasetError(f"ground truth has no '{key}' list")


def _image_index(images: list[Any]) -> dict[int, int]:
    """``{image id: position in 'images'}``; ids must be unique integers."""
    index: dict[int, int] = {}
    for i, im in enumerate(images):
        # plain dicts with plain ints first: the ABC checks cost several times more per image
        image_id = im.get("id") if im.__class__ is dict else None
        if image_id.__class__ is not int:
            if not isinstance(im, Mapping) or not is_int(im.get("id")):
                raise DatasetError(f"images[{i}] has no integer 'id'")
            image_id = int(im["id"])
        if image_id in index:
            raise DatasetError(f"image id {im['id']} appears twice in 'images'")
        index[image_id] = i
    return index


def _category_ids(categories: list[Any]) -> list[int]:
    cat_ids: list[int] = []
    for i, c in enumerate(categories):
        if not isinstance(c, Mapping) or not is_int(c.get("id")):
            raise DatasetError(f"categories[{i}] has no integer 'id'")
        cat_ids.append(int(c["id"]))
    if len(set(cat_ids)) != len(cat_ids):
        raise DatasetError(f"category ids are not unique: {show(cat_ids, 40)}")
    return cat_ids


def _evaluated_images(all_images: Mapping[int, int], image_ids: Iterable[int] | None) -> list[int]:
    """The evaluated image ids, sorted (pycocotools' params.imgIds)."""
    if image_ids is None:
        return sorted(all_images)
    evaluated = sorted({int(i) for i in image_ids})
    missing = [i for i in evaluated if i not in all_images]
    if missing:
        raise DatasetError(
            f"image subset names image ids not in the ground truth: {show(missing[:10])}"
        )
    return evaluated


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
    _check_lists(gt)
    layout = keypoint_layout(gt)
    if layout.k == 0:
        raise DatasetError("the ground truth has no keypoints (no category lists keypoint names)")
    check_annotation_layout(gt, layout)
    notes = check_keypoint_set(layout, keypoint_set, keypoints_from)
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
