"""pycocotools' ``COCOeval.Params`` defaults and stat names: every metric here uses these only.

The thresholds are built as pycocotools builds them (``np.linspace`` with the same arguments),
so comparisons such as ``IOU_THRS == 0.5`` pick the same entries bit for bit.
"""

from __future__ import annotations

import numpy as np

#: pycocotools' ``np.spacing(1)``, added to the OKS area and to precision's denominator.
EPS = float(np.spacing(1))

BBOX_STATS: tuple[str, ...] = (
    "AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl",
)  # fmt: skip
KEYPOINT_STATS: tuple[str, ...] = (
    "AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl",
)  # fmt: skip

IOU_THRS = np.linspace(0.5, 0.95, int(np.round((0.95 - 0.5) / 0.05)) + 1, endpoint=True)
REC_THRS = np.linspace(0.0, 1.00, int(np.round((1.00 - 0.0) / 0.01)) + 1, endpoint=True)
#: Positions of IoU/OKS 0.5 and 0.75 in IOU_THRS (AP50, AP75).
I50 = int(np.flatnonzero(IOU_THRS == 0.5)[0])
I75 = int(np.flatnonzero(IOU_THRS == 0.75)[0])
AREA_RANGES = {
    "bbox": ([[0, 1e5**2], [0, 32**2], [32**2, 96**2], [96**2, 1e5**2]], ["all", "small", "medium", "large"]),
    "keypoints": ([[0, 1e5**2], [32**2, 96**2], [96**2, 1e5**2]], ["all", "medium", "large"]),
}  # fmt: skip
#: The area range "all".
AREA_ALL = (0.0, 1e5**2)
MAX_DETS = {"bbox": [1, 10, 100], "keypoints": [20]}
#: maxDets of the keypoint evaluation.
KP_MAX_DET = MAX_DETS["keypoints"][-1]


def stat_names(iou_type: str) -> tuple[str, ...]:
    return BBOX_STATS if iou_type == "bbox" else KEYPOINT_STATS
