"""``KRCNNConvDeconvUpsampleHead`` and detectron2's ``heatmaps_to_keypoints``.

The head: ``conv_fcn1..N`` (3x3, ReLU), ``score_lowres`` (4x4 transposed conv, stride 2), then a
x2 bilinear upsampling (``align_corners=False``): 14x14 pooled features -> 56x56 heatmaps.

Decoding, per detection: the heatmaps are resized (bicubic) to the box's size rounded up, the
arg-max pixel ``(x_int, y_int)`` is the keypoint at ``(x_int + 0.5) * w / ceil(w) + x0``, and
its score is ``exp(v_max - v_max) / sum(exp(heatmap_56x56 - v_max))``: the peak of a softmax
normalised over the low-resolution map (what detectron2 reports as the keypoint score; the raw
logit is not kept).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .layers import Conv2d


class KeypointHead(nn.Module):
    def __init__(self, channels: int, conv_dims: list[int], num_keypoints: int) -> None:
        super().__init__()
        cin = channels
        self.num_convs = len(conv_dims)
        for idx, dim in enumerate(conv_dims, 1):
            self.add_module(f"conv_fcn{idx}", Conv2d(cin, dim, 3, stride=1, padding=1))
            cin = dim
        self.score_lowres = nn.ConvTranspose2d(cin, num_keypoints, 4, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for idx in range(1, self.num_convs + 1):
            x = F.relu(getattr(self, f"conv_fcn{idx}")(x))
        x = self.score_lowres(x)
        return F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)


def heatmaps_to_keypoints(maps: torch.Tensor, rois: torch.Tensor) -> torch.Tensor:
    """(R, K, S, S) logits and (R, 4) boxes -> (R, K, 3): x, y, score in the boxes' frame."""
    maps = maps.float()
    offset_x = rois[:, 0]
    offset_y = rois[:, 1]
    widths = (rois[:, 2] - rois[:, 0]).clamp(min=1)
    heights = (rois[:, 3] - rois[:, 1]).clamp(min=1)
    widths_ceil = widths.ceil()
    heights_ceil = heights.ceil()
    num_rois, num_keypoints = maps.shape[:2]
    out = maps.new_zeros(num_rois, num_keypoints, 3)
    width_corrections = widths / widths_ceil
    height_corrections = heights / heights_ceil
    idx = torch.arange(num_keypoints, device=maps.device)
    for i in range(num_rois):
        size = (int(heights_ceil[i]), int(widths_ceil[i]))
        roi_map = F.interpolate(maps[[i]], size=size, mode="bicubic", align_corners=False)
        roi_map = roi_map.reshape(roi_map.shape[1:])
        max_score, _ = roi_map.view(num_keypoints, -1).max(1)
        max_score = max_score.view(num_keypoints, 1, 1)
        full = (roi_map - max_score).exp_()
        pool = (maps[i] - max_score).exp_()
        scores = full / pool.sum((1, 2), keepdim=True)
        w = roi_map.shape[2]
        pos = roi_map.view(num_keypoints, -1).argmax(1)
        x_int = pos % w
        y_int = (pos - x_int) // w
        out[i, :, 0] = (x_int.float() + 0.5) * width_corrections[i] + offset_x[i]
        out[i, :, 1] = (y_int.float() + 0.5) * height_corrections[i] + offset_y[i]
        out[i, :, 2] = scores[idx, y_int, x_int]
    return out
