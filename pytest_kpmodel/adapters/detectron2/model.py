"""``GeneralizedRCNN`` with a ResNet-FPN backbone, RPN and the box + keypoint ROI heads, at test
time, assembled from the config. Attribute names mirror detectron2's, so ``state_dict()`` keys
are exactly the keys of detectron2's checkpoints for the same config.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .backbone import FPN
from .config import D2Config
from .keypoint_head import KeypointHead, heatmaps_to_keypoints
from .pooler import ROIPooler
from .preprocess import batch
from .roi_heads import BoxHead, BoxPredictor, Detections
from .rpn import RPN

ROI_STRIDES = (4, 8, 16, 32)


@dataclass
class Instances:
    """One image's output in the coordinates of the network input (before postprocessing)."""

    boxes: torch.Tensor
    scores: torch.Tensor
    classes: torch.Tensor
    keypoints: torch.Tensor  # (N, K, 3) x, y, score
    heatmaps: torch.Tensor  # (N, K, 56, 56) logits


class ROIHeads(nn.Module):
    def __init__(self, cfg: D2Config, channels: int) -> None:
        super().__init__()
        res = cfg["MODEL.ROI_BOX_HEAD.POOLER_RESOLUTION"]
        self.box_pooler = ROIPooler(
            res,
            ROI_STRIDES,
            cfg["MODEL.ROI_BOX_HEAD.POOLER_SAMPLING_RATIO"],
            cfg["MODEL.ROI_BOX_HEAD.POOLER_TYPE"],
        )
        self.box_head = BoxHead(cfg, channels, res)
        self.box_predictor = BoxPredictor(cfg, self.box_head.output_size)
        self.keypoint_pooler = ROIPooler(
            cfg["MODEL.ROI_KEYPOINT_HEAD.POOLER_RESOLUTION"],
            ROI_STRIDES,
            cfg["MODEL.ROI_KEYPOINT_HEAD.POOLER_SAMPLING_RATIO"],
            cfg["MODEL.ROI_KEYPOINT_HEAD.POOLER_TYPE"],
        )
        self.keypoint_head = KeypointHead(
            channels, list(cfg["MODEL.ROI_KEYPOINT_HEAD.CONV_DIMS"]), cfg.num_keypoints
        )

    def forward(
        self,
        features: list[torch.Tensor],
        proposals: list[torch.Tensor],
        image_sizes: list[tuple[int, int]],
    ) -> list[Instances]:
        features = features[: len(ROI_STRIDES)]
        x = self.box_head(self.box_pooler(features, proposals))
        dets: list[Detections] = self.box_predictor(x, proposals, image_sizes)
        boxes = [d.boxes for d in dets]
        heatmaps = self.keypoint_head(self.keypoint_pooler(features, boxes))
        keypoints = heatmaps_to_keypoints(heatmaps.detach(), torch.cat(boxes, dim=0).detach())
        counts = [len(b) for b in boxes]
        return [
            Instances(d.boxes, d.scores, d.classes, k, h)
            for d, k, h in zip(
                dets, keypoints.split(counts, dim=0), heatmaps.split(counts, dim=0), strict=True
            )
        ]


class GeneralizedRCNN(nn.Module):
    def __init__(self, cfg: D2Config) -> None:
        super().__init__()
        self.backbone = FPN(cfg)
        self.proposal_generator = RPN(cfg, self.backbone.out_channels)
        self.roi_heads = ROIHeads(cfg, self.backbone.out_channels)
        mean = torch.tensor(cfg["MODEL.PIXEL_MEAN"]).view(-1, 1, 1)
        std = torch.tensor(cfg["MODEL.PIXEL_STD"]).view(-1, 1, 1)
        # derived from the config, like detectron2's (non-persistent) buffers
        self.register_buffer("pixel_mean", mean, persistent=False)
        self.register_buffer("pixel_std", std, persistent=False)

    def forward(self, images: list[torch.Tensor]) -> list[Instances]:
        """Resized CHW float images in 0-255 (the model's channel order) -> raw instances."""
        x, sizes = batch(images, self.pixel_mean, self.pixel_std, self.backbone.size_divisibility)
        features = self.backbone(x)
        proposals = self.proposal_generator(features, sizes)
        return self.roi_heads(features, proposals, sizes)
