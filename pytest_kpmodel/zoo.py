"""Compact torchvision Keypoint R-CNN builders, for the reference model and for tests.

``architecture = "pytest_kpmodel.zoo:keypointrcnn_compact"`` in a card builds one of these; the
card's ``[model.kwargs]`` are the keyword arguments below. Everything is built from scratch: no
builder here ever downloads weights.
"""

from __future__ import annotations

from typing import Any

BACKBONES = ("resnet18", "resnet34", "resnet50", "mobilenet_v3_large", "resnet18_half")
"""``resnet18_half``: ResNet-18's stages 1-3 at half width (32, 64, 128 channels), a quarter of
the compute; what the CPU-trained reference models in ``example_suite/models`` use."""


def keypointrcnn_compact(
    *,
    backbone: str = "resnet18",
    num_classes: int = 2,
    num_keypoints: int = 17,
    fpn_channels: int = 64,
    box_head_dim: int = 256,
    keypoint_head_depth: int = 4,
    keypoint_head_channels: int = 128,
    min_size: int = 320,
    max_size: int = 512,
    anchor_sizes: tuple[int, ...] | list[int] = (16, 32, 64, 128, 256),
    **detector_kwargs: Any,
):
    """A Keypoint R-CNN with a small FPN backbone and slim box and keypoint heads.

    The torchvision defaults (256-channel FPN, 1024-d box MLP, 8 x 512-channel keypoint convs)
    weigh 59 M parameters; these defaults keep the whole detector under 25 MB in fp32 with a
    ResNet-18 trunk trimmed to its first three stages.
    """
    from torchvision.models.detection import KeypointRCNN
    from torchvision.models.detection.anchor_utils import AnchorGenerator
    from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
    from torchvision.models.detection.keypoint_rcnn import (
        KeypointRCNNHeads,
        KeypointRCNNPredictor,
    )
    from torchvision.ops import MultiScaleRoIAlign

    if backbone not in BACKBONES:
        raise ValueError(f"unknown backbone {backbone!r}; one of {', '.join(BACKBONES)}")
    body = _fpn_backbone(backbone, fpn_channels)
    levels = len(body.body.return_layers) if hasattr(body, "body") else 3
    featmap_names = [str(i) for i in range(levels)]
    sizes = tuple(anchor_sizes)[: levels + 1]
    anchor_generator = AnchorGenerator(
        sizes=tuple((s,) for s in sizes), aspect_ratios=((0.5, 1.0, 2.0),) * len(sizes)
    )
    box_roi_pool = MultiScaleRoIAlign(featmap_names=featmap_names, output_size=7, sampling_ratio=2)
    kp_roi_pool = MultiScaleRoIAlign(featmap_names=featmap_names, output_size=14, sampling_ratio=2)
    kp_layers = tuple([keypoint_head_channels] * keypoint_head_depth)
    model = KeypointRCNN(
        body,
        num_classes=None,
        min_size=min_size,
        max_size=max_size,
        rpn_anchor_generator=anchor_generator,
        box_roi_pool=box_roi_pool,
        box_head=TwoMLPHead(fpn_channels * 7 * 7, box_head_dim),
        box_predictor=FastRCNNPredictor(box_head_dim, num_classes),
        keypoint_roi_pool=kp_roi_pool,
        keypoint_head=KeypointRCNNHeads(fpn_channels, kp_layers),
        keypoint_predictor=KeypointRCNNPredictor(keypoint_head_channels, num_keypoints),
        **detector_kwargs,
    )
    return model


def _fpn_backbone(name: str, fpn_channels: int):
    import torch.nn as nn
    from torchvision.models import mobilenet_v3_large, resnet
    from torchvision.models.detection.backbone_utils import BackboneWithFPN
    from torchvision.ops.feature_pyramid_network import LastLevelMaxPool

    if name == "resnet18_half":
        trunk = _half_resnet18()
        return BackboneWithFPN(
            trunk,
            {"layer1": "0", "layer2": "1", "layer3": "2"},
            [32, 64, 128],
            fpn_channels,
            extra_blocks=LastLevelMaxPool(),
        )
    if name.startswith("resnet"):
        trunk = getattr(resnet, name)(weights=None, norm_layer=nn.BatchNorm2d)
        # Stages 1-3 (strides 4, 8, 16): people here span 30-300 px, stride 32 adds weight, not AP.
        return_layers = {"layer1": "0", "layer2": "1", "layer3": "2"}
        in_channels = [_stage_channels(getattr(trunk, f"layer{i}")) for i in (1, 2, 3)]
        trunk.layer4 = nn.Identity()
        return BackboneWithFPN(
            trunk, return_layers, in_channels, fpn_channels, extra_blocks=LastLevelMaxPool()
        )
    features = mobilenet_v3_large(weights=None).features
    # Outputs of the stride-8, stride-16 and stride-32 blocks.
    stage_idx = [i for i, b in enumerate(features) if getattr(b, "_is_cn", False)] + [
        len(features) - 1
    ]
    chosen = stage_idx[-3:]
    trunk = nn.Sequential(*features)
    return_layers = {str(i): str(k) for k, i in enumerate(chosen)}
    in_channels = [features[i].out_channels for i in chosen]
    return BackboneWithFPN(
        trunk, return_layers, in_channels, fpn_channels, extra_blocks=LastLevelMaxPool()
    )


def _half_resnet18():
    """ResNet-18 stem and stages 1-3 with 32/64/128 channels, initialised like torchvision's."""
    from collections import OrderedDict

    import torch.nn as nn
    from torchvision.models.resnet import BasicBlock

    def stage(cin: int, cout: int, stride: int):
        down = None
        if stride != 1 or cin != cout:
            down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
        return nn.Sequential(BasicBlock(cin, cout, stride, down), BasicBlock(cout, cout))

    trunk = nn.Sequential(
        OrderedDict(
            conv1=nn.Conv2d(3, 32, 7, 2, 3, bias=False),
            bn1=nn.BatchNorm2d(32),
            relu=nn.ReLU(inplace=True),
            maxpool=nn.MaxPool2d(3, 2, 1),
            layer1=stage(32, 32, 1),
            layer2=stage(32, 64, 2),
            layer3=stage(64, 128, 2),
        )
    )
    for m in trunk.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.constant_(m.weight, 1)
            nn.init.constant_(m.bias, 0)
    return trunk


def _stage_channels(stage) -> int:
    last = stage[-1]
    conv = getattr(last, "conv3", None) or last.conv2
    return int(conv.out_channels)
