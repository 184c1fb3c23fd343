"""detectron2 names -> Caffe2 / Detectron1 blob names (the inverse of what the adapter reads),
to write a ``blobs`` .pkl like Detectron1's from the golden weights."""

from __future__ import annotations

import re

import numpy as np

_BLOCK = {"conv1": "branch2a", "conv2": "branch2b", "conv3": "branch2c", "shortcut": "branch1"}
_BN = {"weight": "bn_s", "bias": "bn_b", "running_mean": "bn_rm", "running_var": "bn_riv"}
_LEAF = {"weight": "w", "bias": "b"}


def c2_name(key: str) -> str:
    parts = key.split(".")
    if key.startswith("backbone.bottom_up.stem.conv1."):
        return f"res_conv1_{_BN[parts[-1]]}" if "norm" in parts else "conv1_w"
    m = re.match(r"backbone\.bottom_up\.(res\d)\.(\d+)\.(\w+)\.(norm\.)?(\w+)$", key)
    if m:
        stage, block, conv, norm, leaf = m.groups()
        tail = _BN[leaf] if norm else _LEAF[leaf]
        return f"{stage}_{block}_{_BLOCK[conv]}_{tail}"
    m = re.match(r"backbone\.fpn_(lateral|output)(\d)\.(\w+)$", key)
    if m:
        kind, stage, leaf = m.groups()
        inner = "inner_" if kind == "lateral" else ""
        suffix = "_lateral" if kind == "lateral" and stage != "5" else ""
        return f"fpn_{inner}res{stage}_0_sum{suffix}_{_LEAF[leaf]}"
    simple = {
        "proposal_generator.rpn_head.conv": "conv_rpn_fpn2",
        "proposal_generator.rpn_head.objectness_logits": "rpn_cls_logits_fpn2",
        "proposal_generator.rpn_head.anchor_deltas": "rpn_bbox_pred_fpn2",
        "roi_heads.box_head.fc1": "fc6",
        "roi_heads.box_head.fc2": "fc7",
        "roi_heads.box_predictor.cls_score": "cls_score",
        "roi_heads.box_predictor.bbox_pred": "bbox_pred",
        "roi_heads.keypoint_head.score_lowres": "kps_score_lowres",
    }
    module, _, leaf = key.rpartition(".")
    if module in simple:
        return f"{simple[module]}_{_LEAF[leaf]}"
    m = re.match(r"roi_heads\.keypoint_head\.conv_fcn(\d+)$", module)
    if m:
        return f"conv_fcn{m.group(1)}_{_LEAF[leaf]}"
    raise KeyError(key)


def to_caffe2_blobs(model: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Caffe2 blobs: C2 names, the background class first in cls_score, four zero background
    rows in bbox_pred, and a ``*_momentum`` entry per blob (Detectron1 saved them)."""
    out: dict[str, np.ndarray] = {}
    for key, value in model.items():
        name = c2_name(key)
        if name.startswith("cls_score_"):
            value = np.concatenate([value[-1:], value[:-1]])
        elif name.startswith("bbox_pred_"):
            value = np.concatenate([np.zeros_like(value[:4]), value])
        out[name] = value
        out[name + "_momentum"] = np.zeros_like(value)
    return out
