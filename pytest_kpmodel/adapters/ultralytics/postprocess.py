"""From the pose head's raw output to detections in original-image pixels.

``nms`` follows Ultralytics' ``utils.nms.non_max_suppression``: candidates whose best class
score exceeds ``conf``, boxes from centre/size to corners, one row per (box, class) above
``conf`` when ``multi_label`` (``val`` sets it; it only matters with more than one class) or
the best class otherwise, at most ``max_nms`` (30000) candidates by score, class-aware
``torchvision.ops.nms`` at ``iou`` (classes offset by 7680 px so they never overlap), the first
``max_det`` kept. Ultralytics also stops NMS after a time limit (2 s + 0.05 s per image); this
does not, so a slow machine never changes the result.

``to_original`` undoes the letterbox (``scale_boxes`` / ``scale_coords``): subtract the padding,
divide by the per-axis gain, clip boxes and keypoints to the image.

``decode_head_output`` joins the two into one image's ``Prediction`` (the eager adapter and the
ONNX ``yolo-pose`` layout both decode with it).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..base import Prediction
from .preprocess import Letterbox

MAX_NMS = 30000
MAX_WH = 7680


@dataclass
class Detections:
    boxes: torch.Tensor  # [n, 4] xyxy
    scores: torch.Tensor  # [n]
    classes: torch.Tensor  # [n] class index (0-based)
    keypoints: torch.Tensor  # [n, K, D]


def nms(
    output: torch.Tensor,
    nc: int,
    kpt_shape: tuple[int, int],
    conf: float,
    iou: float,
    max_det: int,
    multi_label: bool,
) -> Detections:
    """One image's head output ``[4 + nc + K*D, N]`` -> the kept detections (input pixels)."""
    import torchvision

    k, d = kpt_shape
    x = output.transpose(0, 1)  # [N, 4 + nc + K*D]
    x = x[x[:, 4 : 4 + nc].amax(1) > conf]
    xy, wh = x[:, :2], x[:, 2:4] / 2
    box = torch.cat((xy - wh, xy + wh), 1)
    cls = x[:, 4 : 4 + nc]
    kpts = x[:, 4 + nc :]
    if multi_label and nc > 1:
        i, j = torch.where(cls > conf)
        box, score, label, kpts = box[i], cls[i, j], j.float(), kpts[i]
    else:
        score, j = cls.max(1)
        keep = score > conf
        box, score, label, kpts = box[keep], score[keep], j[keep].float(), kpts[keep]
    if score.shape[0] > MAX_NMS:
        top = score.argsort(descending=True)[:MAX_NMS]
        box, score, label, kpts = box[top], score[top], label[top], kpts[top]
    keep = torchvision.ops.nms(box + label[:, None] * MAX_WH, score, iou)[:max_det]
    return Detections(box[keep], score[keep], label[keep], kpts[keep].view(-1, k, d))


def to_original(det: Detections, box: Letterbox) -> Detections:
    """Map ``det`` from the network input back to the original image (clipped to it)."""
    h0, w0 = box.original_hw
    gain_y, gain_x = box.gain_yx
    pad_x, pad_y = box.pad_xy
    boxes = det.boxes.clone()
    boxes[:, [0, 2]] -= pad_x
    boxes[:, [1, 3]] -= pad_y
    boxes[:, [0, 2]] /= gain_x
    boxes[:, [1, 3]] /= gain_y
    boxes[:, [0, 2]] = boxes[:, [0, 2]].clamp(0, w0)
    boxes[:, [1, 3]] = boxes[:, [1, 3]].clamp(0, h0)
    kpts = det.keypoints.clone()
    kpts[..., 0] = ((kpts[..., 0] - pad_x) / gain_x).clamp(0, w0)
    kpts[..., 1] = ((kpts[..., 1] - pad_y) / gain_y).clamp(0, h0)
    return Detections(boxes, det.scores, det.classes, kpts)


def decode_head_output(raw, box, nc: int, kpt_shape: tuple[int, int], config) -> Prediction:
    """Shared by the eager adapter and the ONNX ``yolo-pose`` layout."""
    det = nms(
        raw.float(),
        nc,
        kpt_shape,
        config["conf"],
        config["iou"],
        config["max_det"],
        multi_label=config["letterbox"] == "val",
    )
    det = to_original(det, box)
    kpts = det.keypoints[..., :3]
    if kpt_shape[1] == 2:
        kpts = torch.cat([kpts, torch.ones_like(kpts[..., :1])], -1)
    return Prediction(
        boxes=det.boxes, scores=det.scores, labels=det.classes.long() + 1, keypoints=kpts
    )
