"""Public keypoint datasets whose files need one step before COCO evaluation can read them.

* CrowdPose (and AI Challenger) files carry no ``area``: :func:`fill_missing_areas` gives each
  annotation without one ``factor * box w*h``, as CrowdPose's own evaluation does with 0.53
  (``crowdposetools`` ``computeOks``; mmpose ``CocoMetric(use_area=False)``).
* COCO-WholeBody keeps its 133 keypoints in five keys (``keypoints`` holds only the 17 body
  points, its category lists only their 17 names): :func:`assemble_wholebody` joins them in
  the official evaluation's order (body, foot, face, left hand, right hand).

Both return a new COCO dict (the caller's is never changed) and a note for the report. Plain
Python: loading a set must not need numpy or torch.
"""

from __future__ import annotations

from typing import Any

from .keypoint_presets import WHOLEBODY_NAMES, WHOLEBODY_PARTS, WHOLEBODY_SKELETON

WHOLEBODY_K = sum(n for _, n in WHOLEBODY_PARTS)


def fill_missing_areas(coco: dict[str, Any], factor: float) -> tuple[dict[str, Any], str]:
    """Annotations without ``area`` get ``factor * w * h`` of their ``bbox``."""
    anns, filled = [], 0
    for a in coco["annotations"]:
        if isinstance(a, dict) and "area" not in a and _is_box(a.get("bbox")):
            a = {**a, "area": factor * float(a["bbox"][2]) * float(a["bbox"][3])}
            filled += 1
        anns.append(a)
    if not filled:
        return coco, ""
    note = (
        f"{filled} of {len(anns)} annotations had no 'area'; they get {factor:g} * box w*h "
        "(area_from_box)" + (", as CrowdPose's own evaluation does" if factor == 0.53 else "")
    )
    return {**coco, "annotations": anns}, note


def _is_box(value: Any) -> bool:
    return (
        isinstance(value, list)
        and len(value) == 4
        and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
    )


def is_wholebody(coco: dict[str, Any]) -> bool:
    """Whether annotations carry COCO-WholeBody's part keys (the first with keypoints decides)."""
    first = next((a for a in coco["annotations"] if isinstance(a, dict) and "keypoints" in a), None)
    return first is not None and all(key in first for key, _ in WHOLEBODY_PARTS)


def assemble_wholebody(coco: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """The 133-keypoint set of a COCO-WholeBody file.

    ``num_keypoints`` is recounted over the 133 points: the official whole-body evaluation
    ignores a person only when none of the 133 is labelled, and pycocotools (which every
    engine here follows) reads that from ``num_keypoints``. Visibility flags between 0 and 2
    that are not 0, 1 or 2 (COCO-WholeBody's face and hand points carry the annotation tool's
    confidence; its format says ``v > 0`` means labelled) become 1: only ``v > 0`` counts.
    """
    from .errors import DatasetError

    anns, fractional = [], 0
    for a in coco["annotations"]:
        if not isinstance(a, dict) or "keypoints" not in a:
            anns.append(a)
            continue
        flat: list[Any] = []
        for key, n in WHOLEBODY_PARTS:
            part = a.get(key)
            if not isinstance(part, list) or len(part) != 3 * n:
                got = len(part) if isinstance(part, list) else type(part).__name__
                raise DatasetError(
                    f"annotation id {a.get('id')!r}: COCO-WholeBody's {key!r} must be a list "
                    f"of {3 * n} numbers ({n} keypoints), got {got}"
                )
            flat += part
        for j in range(2, len(flat), 3):
            v = flat[j]
            if isinstance(v, int | float) and 0 < v < 2 and v != 1:
                flat[j] = 1
                fractional += 1
        labelled = sum(
            1
            for v in flat[2::3]
            if isinstance(v, int | float) and not isinstance(v, bool) and v > 0
        )
        anns.append({**a, "keypoints": flat, "num_keypoints": labelled})
    categories = [
        {**c, "keypoints": list(WHOLEBODY_NAMES),
         "skeleton": [[WHOLEBODY_NAMES.index(x) + 1, WHOLEBODY_NAMES.index(y) + 1]
                      for x, y in WHOLEBODY_SKELETON]}
        if isinstance(c, dict) and c.get("keypoints") else c
        for c in coco["categories"]
    ]  # fmt: skip
    note = (
        "COCO-WholeBody: the 133 keypoints are 'keypoints' (body 17), 'foot_kpts', 'face_kpts', "
        "'lefthand_kpts' and 'righthand_kpts' joined in the official evaluation's order; "
        "num_keypoints is recounted over all 133"
        + (
            f"; {fractional} fractional visibility flags (confidences, v > 0 = labelled) became 1"
            if fractional
            else ""
        )
    )
    return {**coco, "annotations": anns, "categories": categories}, note
