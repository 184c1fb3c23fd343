"""The region proposal network: ``DefaultAnchorGenerator``, ``StandardRPNHead`` and the test-time
half of ``RPN`` (``_decode_proposals`` + ``find_top_rpn_proposals``).

Anchors are centred at ``OFFSET * stride`` (0 in the zoo configs: the top-left pixel corner,
unlike torchvision), with widths ``sqrt(size**2 / ratio)`` computed in double precision and not
rounded. Proposals: the ``PRE_NMS_TOPK_TEST`` best logits of each level, clipped, empty boxes
dropped, NMS per level (``batched_nms`` with the level as the class), the first
``POST_NMS_TOPK_TEST`` kept.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torchvision.ops import batched_nms

from .boxes import apply_deltas, clip, nonempty
from .config import D2Config, _broadcast
from .layers import Conv2d

STRIDES = (4, 8, 16, 32, 64)


def cell_anchors(sizes: list[float], ratios: list[float]) -> torch.Tensor:
    anchors = []
    for size in sizes:
        area = size**2.0
        for ratio in ratios:
            w = math.sqrt(area / ratio)
            h = ratio * w
            anchors.append([-w / 2.0, -h / 2.0, w / 2.0, h / 2.0])
    return torch.tensor(anchors).float()


class AnchorGenerator(nn.Module):
    def __init__(self, cfg: D2Config) -> None:
        super().__init__()
        sizes = _broadcast(cfg["MODEL.ANCHOR_GENERATOR.SIZES"])
        ratios = _broadcast(cfg["MODEL.ANCHOR_GENERATOR.ASPECT_RATIOS"])
        self.offset = float(cfg["MODEL.ANCHOR_GENERATOR.OFFSET"])
        cells = [cell_anchors(s, r) for s, r in zip(sizes, ratios, strict=True)]
        for i, c in enumerate(cells):
            # not in detectron2's checkpoints either (non-persistent)
            self.register_buffer(f"cell{i}", c, persistent=False)
        self.num_anchors = cells[0].shape[0]

    def forward(self, features: list[torch.Tensor]) -> list[torch.Tensor]:
        out = []
        for i, (feat, stride) in enumerate(zip(features, STRIDES, strict=True)):
            base = getattr(self, f"cell{i}")
            h, w = feat.shape[-2:]
            shifts_x = torch.arange(
                self.offset * stride, w * stride, step=stride, dtype=torch.float32
            ).to(base.device)
            shifts_y = torch.arange(
                self.offset * stride, h * stride, step=stride, dtype=torch.float32
            ).to(base.device)
            shift_y, shift_x = torch.meshgrid(shifts_y, shifts_x, indexing="ij")
            shift_x = shift_x.reshape(-1)
            shift_y = shift_y.reshape(-1)
            shifts = torch.stack((shift_x, shift_y, shift_x, shift_y), dim=1)
            out.append((shifts.view(-1, 1, 4) + base.view(1, -1, 4)).reshape(-1, 4))
        return out


class RPNHead(nn.Module):
    """A shared 3x3 conv (+ReLU), then 1x1 convs for objectness and anchor deltas."""

    def __init__(self, channels: int, num_anchors: int, conv_dims: list[int]) -> None:
        super().__init__()
        cur = channels
        if len(conv_dims) == 1:
            out = cur if conv_dims[0] == -1 else conv_dims[0]
            self.conv: nn.Module = Conv2d(cur, out, 3, padding=1)
            cur = out
        else:
            self.conv = nn.Sequential()
            for k, dim in enumerate(conv_dims):
                out = cur if dim == -1 else dim
                self.conv.add_module(f"conv{k}", Conv2d(cur, out, 3, padding=1))
                cur = out
        self.objectness_logits = nn.Conv2d(cur, num_anchors, kernel_size=1)
        self.anchor_deltas = nn.Conv2d(cur, num_anchors * 4, kernel_size=1)

    def hidden(self, x: torch.Tensor) -> torch.Tensor:
        if isinstance(self.conv, nn.Sequential):
            for conv in self.conv:
                x = torch.relu(conv(x))
            return x
        return torch.relu(self.conv(x))

    def forward(
        self, features: list[torch.Tensor]
    ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        logits, deltas = [], []
        for x in features:
            t = self.hidden(x)
            logits.append(self.objectness_logits(t))
            deltas.append(self.anchor_deltas(t))
        return logits, deltas


class RPN(nn.Module):
    def __init__(self, cfg: D2Config, channels: int) -> None:
        super().__init__()
        self.anchor_generator = AnchorGenerator(cfg)
        self.rpn_head = RPNHead(
            channels, self.anchor_generator.num_anchors, list(cfg["MODEL.RPN.CONV_DIMS"])
        )
        self.weights = tuple(float(w) for w in cfg["MODEL.RPN.BBOX_REG_WEIGHTS"])
        self.pre_nms_topk = int(cfg["MODEL.RPN.PRE_NMS_TOPK_TEST"])
        self.post_nms_topk = int(cfg["MODEL.RPN.POST_NMS_TOPK_TEST"])
        self.nms_thresh = float(cfg["MODEL.RPN.NMS_THRESH"])
        self.min_box_size = float(cfg["MODEL.PROPOSAL_GENERATOR.MIN_SIZE"])

    def forward(
        self, features: list[torch.Tensor], image_sizes: list[tuple[int, int]]
    ) -> list[torch.Tensor]:
        """[p2..p6] -> one (R, 4) proposal tensor per image, best objectness first."""
        anchors = self.anchor_generator(features)
        logits, deltas = self.rpn_head(features)
        logits = [s.permute(0, 2, 3, 1).flatten(1) for s in logits]
        deltas = [
            x.view(x.shape[0], -1, 4, x.shape[-2], x.shape[-1])
            .permute(0, 3, 4, 1, 2)
            .flatten(1, -2)
            for x in deltas
        ]
        n = deltas[0].shape[0]
        proposals = []
        for anchors_i, deltas_i in zip(anchors, deltas, strict=True):
            d = deltas_i.reshape(-1, 4)
            a = anchors_i.unsqueeze(0).expand(n, -1, -1).reshape(-1, 4)
            proposals.append(apply_deltas(d, a, self.weights).view(n, -1, 4))
        return self.top_proposals(proposals, logits, image_sizes)

    def top_proposals(
        self,
        proposals: list[torch.Tensor],
        logits: list[torch.Tensor],
        image_sizes: list[tuple[int, int]],
    ) -> list[torch.Tensor]:
        device = proposals[0].device
        batch_idx = torch.arange(len(image_sizes), device=device)
        top_scores, top_boxes, level_ids = [], [], []
        for level, (boxes_i, logits_i) in enumerate(zip(proposals, logits, strict=True)):
            k = min(logits_i.shape[1], self.pre_nms_topk)
            scores_i, idx = logits_i.topk(k, dim=1)
            top_boxes.append(boxes_i[batch_idx[:, None], idx])
            top_scores.append(scores_i)
            level_ids.append(torch.full((k,), level, dtype=torch.int64, device=device))
        scores = torch.cat(top_scores, dim=1)
        boxes = torch.cat(top_boxes, dim=1)
        levels = torch.cat(level_ids, dim=0)
        out = []
        for i, size in enumerate(image_sizes):
            b, s, lvl = boxes[i], scores[i], levels
            valid = torch.isfinite(b).all(dim=1) & torch.isfinite(s)
            if not valid.all():
                b, s, lvl = b[valid], s[valid], lvl[valid]
            b = clip(b, size)
            keep = nonempty(b, self.min_box_size)
            if keep.sum().item() != len(b):
                b, s, lvl = b[keep], s[keep], lvl[keep]
            keep = batched_nms(b.float(), s, lvl, self.nms_thresh)[: self.post_nms_topk]
            out.append(b[keep])
        return out
