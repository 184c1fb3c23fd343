"""``ROIPooler`` over P2-P5: each box pooled from the level its size picks (``ROIAlignV2`` =
torchvision's ``roi_align(aligned=True)``; ``ROIAlign`` = ``aligned=False``).

Level of a box: ``floor(4 + log2(sqrt(area) / 224 + 1e-8))`` clamped to [2, 5] (canonical box
224 px on P4, as detectron2 and the FPN paper).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torchvision.ops import roi_align

CANONICAL_SIZE = 224
CANONICAL_LEVEL = 4


class ROIPooler(nn.Module):
    def __init__(
        self, resolution: int, strides: tuple[int, ...], sampling_ratio: int, pooler_type: str
    ) -> None:
        super().__init__()
        self.output_size = (resolution, resolution)
        self.scales = [1.0 / s for s in strides]
        self.sampling_ratio = sampling_ratio
        self.aligned = pooler_type == "ROIAlignV2"
        self.min_level = int(-math.log2(self.scales[0]))
        self.max_level = int(-math.log2(self.scales[-1]))

    def levels(self, boxes: torch.Tensor) -> torch.Tensor:
        sizes = torch.sqrt((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]))
        lv = torch.floor(CANONICAL_LEVEL + torch.log2(sizes / CANONICAL_SIZE + 1e-8))
        lv = torch.clamp(lv, min=self.min_level, max=self.max_level)
        return lv.to(torch.int64) - self.min_level

    def forward(self, features: list[torch.Tensor], boxes: list[torch.Tensor]) -> torch.Tensor:
        """Per-image (Ri, 4) boxes in input pixels -> (sum Ri, C, res, res)."""
        flat = torch.cat(boxes, dim=0)
        sizes = torch.tensor([len(b) for b in boxes], device=flat.device)
        index = torch.repeat_interleave(
            torch.arange(len(boxes), dtype=flat.dtype, device=flat.device), sizes
        )
        rois = torch.cat([index[:, None], flat], dim=1)
        levels = self.levels(flat)
        c = features[0].shape[1]
        out = torch.zeros(
            (rois.shape[0], c, *self.output_size), dtype=features[0].dtype, device=flat.device
        )
        for level, (feat, scale) in enumerate(zip(features, self.scales, strict=True)):
            inds = (levels == level).nonzero(as_tuple=True)[0]
            pooled = roi_align(
                feat,
                rois[inds].to(dtype=feat.dtype),
                self.output_size,
                scale,
                self.sampling_ratio,
                self.aligned,
            )
            out.index_put_((inds,), pooled)
        return out
