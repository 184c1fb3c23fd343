"""Caffe2 / Detectron1 blob names -> detectron2 names, and detectron2's suffix matching.

A ``.pkl`` that is not in detectron2's model-zoo layout (no ``model`` + ``__author__``) is taken,
as ``DetectionCheckpointer`` does, for a Caffe2 file: its blob names (``res2_0_branch2a_w``,
``fpn_inner_res5_2_sum_w``, ``conv_fcn1_w``, ``kps_score_lowres_w``...) are renamed by the rules
of detectron2's ``convert_c2_detectron_names`` that concern this architecture (ResNet, FPN, RPN,
box head, keypoint head), the box predictor's background class is moved from first to last,
and every model key is then matched to the longest checkpoint key that is a dotted suffix of it
(``align_and_update_state_dicts``).
"""

from __future__ import annotations

import re
from typing import Any

_BASIC = [
    (r"bn\.s$", "norm.weight"),
    (r"bn\.bias$", "norm.bias"),
    (r"bn\.rm", "norm.running_mean"),
    (r"bn\.running.mean$", "norm.running_mean"),
    (r"bn\.riv$", "norm.running_var"),
    (r"bn\.running.var$", "norm.running_var"),
    (r"bn\.gamma$", "norm.weight"),
    (r"bn\.beta$", "norm.bias"),
    (r"gn\.s$", "norm.weight"),
    (r"gn\.bias$", "norm.bias"),
    (r"^res\.conv1\.norm\.", "conv1.norm."),
    (r"^conv1\.", "stem.conv1."),
]
_BLOCKS = [
    (".branch1.", ".shortcut."),
    (".branch2a.", ".conv1."),
    (".branch2b.", ".conv2."),
    (".branch2c.", ".conv3."),
]
_HEADS_RE = [
    (r"^bbox\.pred", "bbox_pred"),
    (r"^cls\.score", "cls_score"),
    (r"^fc6\.", "box_head.fc1."),
    (r"^fc7\.", "box_head.fc2."),
    (r"^head\.conv", "box_head.conv"),
]
_RPN = [
    ("conv.rpn.fpn2", "proposal_generator.rpn_head.conv"),
    ("conv.rpn", "proposal_generator.rpn_head.conv"),
    ("rpn.bbox.pred.fpn2", "proposal_generator.rpn_head.anchor_deltas"),
    ("rpn.cls.logits.fpn2", "proposal_generator.rpn_head.objectness_logits"),
    ("rpn.bbox.pred", "proposal_generator.rpn_head.anchor_deltas"),
    ("rpn.cls.logits", "proposal_generator.rpn_head.objectness_logits"),
]
_KEYPOINTS = [
    ("conv.fcn", "roi_heads.keypoint_head.conv_fcn"),
    ("kps.score.lowres", "roi_heads.keypoint_head.score_lowres"),
    ("kps.score.", "roi_heads.keypoint_head.score."),
]


def c2_name(key: str) -> str:
    k = {"pred_b": "linear_b", "pred_w": "linear_w"}.get(key, key)
    k = k.replace("_", ".")
    k = re.sub(r"\.b$", ".bias", k)
    k = re.sub(r"\.w$", ".weight", k)
    for pattern, repl in _BASIC:
        k = re.sub(pattern, repl, k)
    for old, new in _BLOCKS:
        k = k.replace(old, new)
    for old, new in _RPN:
        k = k.replace(old, new)
    for pattern, repl in _HEADS_RE:
        k = re.sub(pattern, repl, k)
    k = _fpn(k)
    for old, new in _KEYPOINTS:
        k = k.replace(old, new)
    return k


def _fpn(name: str) -> str:
    parts = name.split(".")
    norm = ".norm" if "norm" in parts else ""
    if name.startswith("fpn.inner."):
        return f"fpn_lateral{int(parts[2][3:])}{norm}.{parts[-1]}"
    if name.startswith("fpn.res"):
        return f"fpn_output{int(parts[1][3:])}{norm}.{parts[-1]}"
    return name


def convert_c2(weights: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """Renamed weights (background class moved last) and new name -> original name."""
    import torch

    out: dict[str, Any] = {}
    origin: dict[str, str] = {}
    for orig in sorted(weights):
        new = c2_name(orig)
        if new in out:
            raise ValueError(f"{origin[new]} and {orig} both rename to {new}")
        origin[new] = orig
        value = weights[orig]
        if new.startswith("bbox_pred."):
            value = value[4:]  # the background class's meaningless box deltas
        elif new.startswith("cls_score."):
            value = torch.cat([value[1:], value[:1]])
        out[new] = value
    return out, origin


def align(model_keys: list[str], ckpt: dict[str, Any]) -> dict[str, str]:
    """model key -> checkpoint key: the longest checkpoint key equal to, or a dotted suffix of,
    the model key. Raises ``ValueError`` when one checkpoint key would feed two model keys."""
    out: dict[str, str] = {}
    used: dict[str, str] = {}
    for mk in sorted(model_keys):
        best = ""
        for ck in ckpt:
            if (mk == ck or mk.endswith("." + ck)) and len(ck) > len(best):
                best = ck
        if not best:
            continue
        if best in used:
            raise ValueError(
                f"checkpoint key {best!r} matches two model keys ({used[best]} and {mk})"
            )
        used[best] = mk
        out[mk] = best
    return out
