"""The plugin's detectron2 model as one traceable graph in detectron2's export layout, for ONNX.

detectron2's own ONNX export (``tools/deploy/export_model.py --export-method tracing --format
onnx``: ``TracingAdapter`` around ``model.inference(inputs, do_postprocess=False)``) fails with
torch 2.14 for keypoint R-CNN: the default (dynamo) exporter stops at a data-dependent branch in
``find_top_rpn_proposals`` (``if not valid_mask.all()``), the TorchScript-based one at the
advanced indexing in the scripted ``heatmaps_to_keypoints`` loop ("ONNX export of operator
aten::index ... on tensor of unknown rank"). So this module exports the plugin's own
implementation, with detectron2's export interface:

- input ``image``: one ``[3, H, W]`` float32 image in 0-255, in the model's channel order
  (``INPUT.FORMAT``), already resized by ``ResizeShortestEdge`` (H, W dynamic);
- outputs, in the order ``TracingAdapter`` flattens ``Instances`` (fields sorted by name, then
  the image size): ``pred_boxes`` [N, 4], ``pred_classes`` [N] (0-based), ``pred_keypoint_heatmaps``
  [N, K, 56, 56], ``pred_keypoints`` [N, K, 3] (x, y, score), ``scores`` [N], ``image_size`` [2]
  (H, W), all in the coordinates of the input image (no ``detector_postprocess``).

The graph is the eager model's computation written with ops the TorchScript-based exporter
can follow: sizes as tensors, masks as index lists, and the per-detection keypoint decoding as a
scripted loop with gathers instead of advanced indexing.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import batched_nms, roi_align

from .boxes import apply_deltas
from .model import GeneralizedRCNN

OUTPUT_NAMES = (
    "pred_boxes",
    "pred_classes",
    "pred_keypoint_heatmaps",
    "pred_keypoints",
    "scores",
    "image_size",
)


def _min_k(n: torch.Tensor, k: int) -> torch.Tensor:
    return torch.clamp(n, max=k)


def _clip(boxes: torch.Tensor, h: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    zero = torch.zeros((), dtype=boxes.dtype)
    x1 = torch.min(torch.max(boxes[:, 0], zero), w)
    y1 = torch.min(torch.max(boxes[:, 1], zero), h)
    x2 = torch.min(torch.max(boxes[:, 2], zero), w)
    y2 = torch.min(torch.max(boxes[:, 3], zero), h)
    return torch.stack((x1, y1, x2, y2), dim=-1)


@torch.jit.script_if_tracing
def _keypoints(maps: torch.Tensor, rois: torch.Tensor) -> torch.Tensor:
    """``heatmaps_to_keypoints`` as a loop the exporter turns into an ONNX Loop."""
    num_keypoints = maps.shape[1]
    out = torch.zeros((0, num_keypoints, 3), dtype=torch.float32)
    widths = torch.clamp(rois[:, 2] - rois[:, 0], min=1.0)
    heights = torch.clamp(rois[:, 3] - rois[:, 1], min=1.0)
    widths_ceil = torch.ceil(widths)
    heights_ceil = torch.ceil(heights)
    for i in range(rois.shape[0]):
        roi_map = F.interpolate(
            maps[i : i + 1],
            size=(int(heights_ceil[i]), int(widths_ceil[i])),
            mode="bicubic",
            align_corners=False,
        )[0]
        flat = roi_map.reshape(num_keypoints, -1)
        max_score = flat.max(1)[0].reshape(num_keypoints, 1)
        pool_sum = torch.exp(maps[i].reshape(num_keypoints, -1) - max_score).sum(1)
        pos = flat.argmax(1)
        peak = torch.gather(flat, 1, pos.reshape(num_keypoints, 1)).reshape(num_keypoints)
        score = torch.exp(peak - max_score.reshape(num_keypoints)) / pool_sum
        w = roi_map.shape[2]
        x_int = pos % w
        y_int = (pos - x_int) // w
        x = (x_int.to(torch.float32) + 0.5) * (widths[i] / widths_ceil[i]) + rois[i, 0]
        y = (y_int.to(torch.float32) + 0.5) * (heights[i] / heights_ceil[i]) + rois[i, 1]
        out = torch.cat((out, torch.stack((x, y, score), dim=1).unsqueeze(0)), 0)
    return out


class TracedDetector(nn.Module):
    """One image in, detectron2's export outputs out (see the module docstring)."""

    def __init__(self, model: GeneralizedRCNN) -> None:
        super().__init__()
        self.model = model

    def forward(self, image: torch.Tensor):
        m = self.model
        shape = torch._shape_as_tensor(image)
        h, w = shape[1], shape[2]
        x = (image - m.pixel_mean) / m.pixel_std
        div = m.backbone.size_divisibility
        pad_h = (div - h % div) % div
        pad_w = (div - w % div) % div
        x = F.pad(x, [0, pad_w, 0, pad_h]).unsqueeze(0)
        features = m.backbone(x)
        hf, wf = h.to(torch.float32), w.to(torch.float32)
        proposals = self._proposals(features, hf, wf)
        return self._roi_heads(features, proposals, hf, wf, shape[1:])

    def _proposals(self, features, h, w) -> torch.Tensor:
        rpn = self.model.proposal_generator
        anchors = rpn.anchor_generator(features)
        logits, deltas = rpn.rpn_head(features)
        boxes, scores, levels = [], [], []
        for lvl, (a, s, d) in enumerate(zip(anchors, logits, deltas, strict=True)):
            s = s.permute(0, 2, 3, 1).reshape(-1)
            d = d.view(1, -1, 4, d.shape[-2], d.shape[-1]).permute(0, 3, 4, 1, 2).reshape(-1, 4)
            k = _min_k(torch._shape_as_tensor(s)[0], rpn.pre_nms_topk)
            top, idx = s.topk(k)  # a tensor: the exporter keeps k dynamic
            boxes.append(apply_deltas(d[idx], a[idx], rpn.weights))
            scores.append(top)
            levels.append(torch.full_like(top, lvl, dtype=torch.int64))
        b, s, lv = torch.cat(boxes), torch.cat(scores), torch.cat(levels)
        b = _clip(b, h, w)
        keep = (b[:, 2] - b[:, 0] > rpn.min_box_size) & (b[:, 3] - b[:, 1] > rpn.min_box_size)
        idx = keep.nonzero().reshape(-1)
        b, s, lv = b[idx], s[idx], lv[idx]
        keep = batched_nms(b, s, lv, rpn.nms_thresh)[: rpn.post_nms_topk]
        return b[keep]

    def _pool(self, pooler, features, boxes) -> torch.Tensor:
        rois = torch.cat([torch.zeros_like(boxes[:, :1]), boxes], dim=1)
        levels = pooler.levels(boxes)
        out = torch.zeros(
            (boxes.shape[0], features[0].shape[1], *pooler.output_size), dtype=features[0].dtype
        )
        for level, (feat, scale) in enumerate(zip(features, pooler.scales, strict=False)):
            idx = (levels == level).nonzero().reshape(-1)
            pooled = roi_align(
                feat, rois[idx], pooler.output_size, scale, pooler.sampling_ratio, pooler.aligned
            )
            out = out.index_put((idx,), pooled)
        return out

    def _roi_heads(self, features, proposals, h, w, size):
        heads = self.model.roi_heads
        features = features[:4]
        pred = heads.box_predictor
        x = heads.box_head(self._pool(heads.box_pooler, features, proposals))
        x = torch.flatten(x, 1)
        logits, deltas = pred.cls_score(x), pred.bbox_pred(x)
        probs = logits.sigmoid() if pred.sigmoid else F.softmax(logits, dim=-1)
        boxes = apply_deltas(deltas, proposals, pred.weights)
        scores = probs[:, :-1]
        num_reg = deltas.shape[1] // 4
        boxes = _clip(boxes.reshape(-1, 4), h, w).reshape(-1, num_reg, 4)
        inds = (scores > pred.score_thresh).nonzero()
        boxes = boxes[inds[:, 0], 0] if num_reg == 1 else boxes[inds[:, 0], inds[:, 1]]
        scores = scores[inds[:, 0], inds[:, 1]]
        keep = batched_nms(boxes, scores, inds[:, 1], pred.nms_thresh)
        if pred.topk >= 0:
            keep = keep[: pred.topk]
        boxes, scores, classes = boxes[keep], scores[keep], inds[keep][:, 1]
        heatmaps = heads.keypoint_head(self._pool(heads.keypoint_pooler, features, boxes))
        keypoints = _keypoints(heatmaps, boxes)
        return boxes, classes, heatmaps, keypoints, scores, size


def export(model: GeneralizedRCNN, path, example: torch.Tensor):
    """Write ``model`` as ONNX (TorchScript-based exporter, dynamic H and W);
    ``ExportUnavailable`` with the exporter's reason when it fails."""
    import copy

    from ..onnx_export import export_graph

    module = TracedDetector(copy.deepcopy(model).cpu().eval()).eval()
    options = {
        "input_names": ["image"],
        "output_names": list(OUTPUT_NAMES),
        "dynamic_axes": {"image": {1: "height", 2: "width"}},
    }
    return export_graph(module, (example.detach().float().cpu(),), path, [("legacy", options)])
