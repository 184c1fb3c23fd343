"""The box branch of ``StandardROIHeads`` at test time: ``FastRCNNConvFCHead`` (convs, then fcs,
each followed by ReLU), ``FastRCNNOutputLayers`` (``cls_score`` with the background as the LAST
class, ``bbox_pred`` per class or class-agnostic) and ``fast_rcnn_inference_single_image``:
softmax (or sigmoid), boxes decoded with ``BBOX_REG_WEIGHTS`` and clipped, scores above
``SCORE_THRESH_TEST`` kept per (box, class), NMS per class, the best ``DETECTIONS_PER_IMAGE``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import batched_nms

from .boxes import apply_deltas, clip
from .config import D2Config
from .layers import Conv2d


@dataclass
class Detections:
    """One image's detections in the coordinates of the network input (the resized image)."""

    boxes: torch.Tensor  # (N, 4)
    scores: torch.Tensor  # (N,)
    classes: torch.Tensor  # (N,) int64, 0-based foreground class


class BoxHead(nn.Module):
    def __init__(self, cfg: D2Config, channels: int, resolution: int) -> None:
        super().__init__()
        size: int | tuple[int, int, int] = (channels, resolution, resolution)
        self.convs = []
        for k in range(cfg["MODEL.ROI_BOX_HEAD.NUM_CONV"]):
            dim = cfg["MODEL.ROI_BOX_HEAD.CONV_DIM"]
            assert isinstance(size, tuple)
            conv = Conv2d(size[0], dim, 3, padding=1)
            self.add_module(f"conv{k + 1}", conv)
            self.convs.append(conv)
            size = (dim, size[1], size[2])
        self.fcs = []
        for k in range(cfg["MODEL.ROI_BOX_HEAD.NUM_FC"]):
            dim = cfg["MODEL.ROI_BOX_HEAD.FC_DIM"]
            fan_in = size if isinstance(size, int) else size[0] * size[1] * size[2]
            fc = nn.Linear(fan_in, dim)
            self.add_module(f"fc{k + 1}", fc)
            self.fcs.append(fc)
            size = dim
        self.output_size = size if isinstance(size, int) else size[0] * size[1] * size[2]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv in self.convs:
            x = F.relu(conv(x))
        if self.fcs:
            x = torch.flatten(x, 1)
        for fc in self.fcs:
            x = F.relu(fc(x))
        return x


class BoxPredictor(nn.Module):
    def __init__(self, cfg: D2Config, input_size: int) -> None:
        super().__init__()
        self.num_classes = cfg["MODEL.ROI_HEADS.NUM_CLASSES"]
        agnostic = cfg["MODEL.ROI_BOX_HEAD.CLS_AGNOSTIC_BBOX_REG"]
        self.cls_score = nn.Linear(input_size, self.num_classes + 1)
        self.bbox_pred = nn.Linear(input_size, (1 if agnostic else self.num_classes) * 4)
        self.weights = tuple(float(w) for w in cfg["MODEL.ROI_BOX_HEAD.BBOX_REG_WEIGHTS"])
        self.sigmoid = cfg["MODEL.ROI_BOX_HEAD.USE_SIGMOID_CE"]
        self.score_thresh = float(cfg["MODEL.ROI_HEADS.SCORE_THRESH_TEST"])
        self.nms_thresh = float(cfg["MODEL.ROI_HEADS.NMS_THRESH_TEST"])
        self.topk = int(cfg["TEST.DETECTIONS_PER_IMAGE"])

    def forward(
        self, x: torch.Tensor, proposals: list[torch.Tensor], image_sizes: list[tuple[int, int]]
    ) -> list[Detections]:
        if x.dim() > 2:
            x = torch.flatten(x, start_dim=1)
        scores = self.cls_score(x)
        deltas = self.bbox_pred(x)
        counts = [len(p) for p in proposals]
        boxes = apply_deltas(deltas, torch.cat(proposals, dim=0), self.weights).split(counts)
        probs = (scores.sigmoid() if self.sigmoid else F.softmax(scores, dim=-1)).split(counts)
        return [
            self.single_image(b, p, size)
            for b, p, size in zip(boxes, probs, image_sizes, strict=True)
        ]

    def single_image(
        self, boxes: torch.Tensor, scores: torch.Tensor, size: tuple[int, int]
    ) -> Detections:
        valid = torch.isfinite(boxes).all(dim=1) & torch.isfinite(scores).all(dim=1)
        if not valid.all():
            boxes, scores = boxes[valid], scores[valid]
        scores = scores[:, :-1]
        num_reg = boxes.shape[1] // 4
        boxes = clip(boxes.reshape(-1, 4), size).view(-1, num_reg, 4)
        mask = scores > self.score_thresh
        inds = mask.nonzero()
        boxes = boxes[inds[:, 0], 0] if num_reg == 1 else boxes[mask]
        scores = scores[mask]
        keep = batched_nms(boxes.float(), scores, inds[:, 1], self.nms_thresh)
        if self.topk >= 0:
            keep = keep[: self.topk]
        return Detections(boxes[keep], scores[keep], inds[keep][:, 1])
