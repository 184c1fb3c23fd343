"""From tensor names (and shapes, where the file stores them) to a builder and its kwargs: a guess.

``kpmodel card init`` writes the guess into the starter card, marked TODO; it knows torchvision's
Keypoint R-CNN ResNet-50 FPN and the compact zoo builder (``pytest_kpmodel.zoo``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass
class ArchGuess:
    architecture: str | None
    kwargs: dict[str, object]
    note: str
    confident: bool = False
    num_keypoints: int | None = None


def guess_architecture(tensors: dict[str, tuple[int, ...] | None]) -> ArchGuess:
    """From tensor names (and shapes when known) to a builder and its kwargs; a guess."""
    names = set(tensors)

    def shape(name: str) -> tuple[int, ...] | None:
        return tensors.get(name)

    kps = shape("roi_heads.keypoint_predictor.kps_score_lowres.weight")
    if "roi_heads.keypoint_predictor.kps_score_lowres.weight" not in names:
        return ArchGuess(None, {}, "the tensor names match no builder known here")
    kwargs: dict[str, object] = {}
    cls = shape("roi_heads.box_predictor.cls_score.weight")
    if cls:
        kwargs["num_classes"] = cls[0]
    num_kp = kps[1] if kps and len(kps) == 4 else None
    if num_kp:
        kwargs["num_keypoints"] = num_kp
    has_layer4 = any(n.startswith("backbone.body.layer4.") for n in names)
    bottleneck = any(n.startswith("backbone.body.layer") and ".conv3." in n for n in names)
    kp_convs = sorted(
        {int(m.group(1)) for n in names if (m := re.match(r"roi_heads\.keypoint_head\.(\d+)\.weight$", n))}
    )  # fmt: skip
    if has_layer4 and bottleneck and len(kp_convs) == 8:
        return ArchGuess(
            "torchvision:keypointrcnn_resnet50_fpn",
            kwargs,
            "Keypoint R-CNN ResNet-50 FPN tensor names (layer4 bottlenecks, 8 keypoint convs)",
            confident=True,
            num_keypoints=num_kp,
        )
    if not has_layer4:
        if any(n.startswith("backbone.body.layer1.") for n in names):
            if bottleneck:
                backbone = "resnet50"
            else:
                blocks = {n.split(".")[3] for n in names if n.startswith("backbone.body.layer1.")}
                backbone = "resnet34" if len(blocks) >= 3 else "resnet18"
        else:
            backbone = "mobilenet_v3_large"
        kwargs = {"backbone": backbone, **kwargs}
        fpn = shape("backbone.fpn.layer_blocks.0.0.weight")
        if fpn:
            kwargs["fpn_channels"] = fpn[0]
        fc6 = shape("roi_heads.box_head.fc6.weight")
        if fc6:
            kwargs["box_head_dim"] = fc6[0]
        if kp_convs:
            kwargs["keypoint_head_depth"] = len(kp_convs)
            first = shape(f"roi_heads.keypoint_head.{kp_convs[0]}.weight")
            if first:
                kwargs["keypoint_head_channels"] = first[0]
        return ArchGuess(
            "pytest_kpmodel.zoo:keypointrcnn_compact",
            kwargs,
            "Keypoint R-CNN tensor names without a layer4 stage, like the compact zoo builder",
            num_keypoints=num_kp,
        )
    return ArchGuess(
        "torchvision:keypointrcnn_resnet50_fpn",
        kwargs,
        "Keypoint R-CNN tensor names, but not the standard ResNet-50 FPN layout: check it",
        num_keypoints=num_kp,
    )
