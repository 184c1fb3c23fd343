"""ResNet (``build_resnet_backbone``) and FPN with a max-pooled P6 (``build_resnet_fpn_backbone``).

Module names follow detectron2's, so state-dict keys match its checkpoints:
``backbone.bottom_up.stem.conv1``, ``backbone.bottom_up.res{2..5}.{i}.conv{1,2,3}`` (+ ``.norm``,
``.shortcut``), ``backbone.fpn_lateral{2..5}``, ``backbone.fpn_output{2..5}``.

ResNet-50/101/152 use bottleneck blocks with the stride in the first 1x1 conv when
``STRIDE_IN_1X1`` (the MSRA models) and in the 3x3 conv otherwise; ResNet-18/34 use basic
blocks. Every conv is bias-free and followed by a frozen batch norm. P6 is
``max_pool2d(P5, kernel_size=1, stride=2)`` (``LastLevelMaxPool``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import DEPTHS, D2Config
from .layers import Conv2d, FrozenBatchNorm2d


def _conv_bn(cin: int, cout: int, k: int, stride: int = 1, padding: int = 0, **kw) -> Conv2d:
    return Conv2d(
        cin, cout, k, stride=stride, padding=padding, bias=False, norm=FrozenBatchNorm2d(cout), **kw
    )


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.shortcut = _conv_bn(cin, cout, 1, stride) if cin != cout else None
        self.conv1 = _conv_bn(cin, cout, 3, stride, 1)
        self.conv2 = _conv_bn(cout, cout, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu_(self.conv1(x))
        out = self.conv2(out)
        out += self.shortcut(x) if self.shortcut is not None else x
        return F.relu_(out)


class BottleneckBlock(nn.Module):
    def __init__(
        self, cin: int, cout: int, bottleneck: int, stride: int, groups: int, stride_in_1x1: bool
    ) -> None:
        super().__init__()
        self.shortcut = _conv_bn(cin, cout, 1, stride) if cin != cout else None
        s1, s3 = (stride, 1) if stride_in_1x1 else (1, stride)
        self.conv1 = _conv_bn(cin, bottleneck, 1, s1)
        self.conv2 = _conv_bn(bottleneck, bottleneck, 3, s3, 1, groups=groups)
        self.conv3 = _conv_bn(bottleneck, cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu_(self.conv1(x))
        out = F.relu_(self.conv2(out))
        out = self.conv3(out)
        out += self.shortcut(x) if self.shortcut is not None else x
        return F.relu_(out)


class BasicStem(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv1 = _conv_bn(cin, cout, 7, 2, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu_(self.conv1(x))
        return F.max_pool2d(x, kernel_size=3, stride=2, padding=1)


class ResNet(nn.Module):
    """Stem + res2..res5; returns every stage's output (the FPN uses all four)."""

    def __init__(self, cfg: D2Config) -> None:
        super().__init__()
        depth = cfg["MODEL.RESNETS.DEPTH"]
        groups = cfg["MODEL.RESNETS.NUM_GROUPS"]
        bottleneck = groups * cfg["MODEL.RESNETS.WIDTH_PER_GROUP"]
        cin = cfg["MODEL.RESNETS.STEM_OUT_CHANNELS"]
        cout = cfg["MODEL.RESNETS.RES2_OUT_CHANNELS"]
        stride_in_1x1 = cfg["MODEL.RESNETS.STRIDE_IN_1X1"]
        self.stem = BasicStem(3, cin)
        self.stage_names = ("res2", "res3", "res4", "res5")
        self.out_channels: list[int] = []
        for idx, (name, n) in enumerate(zip(self.stage_names, DEPTHS[depth], strict=True)):
            blocks: list[nn.Module] = []
            for i in range(n):
                stride = 2 if i == 0 and idx > 0 else 1
                if depth < 50:
                    blocks.append(BasicBlock(cin, cout, stride))
                else:
                    blocks.append(
                        BottleneckBlock(cin, cout, bottleneck, stride, groups, stride_in_1x1)
                    )
                cin = cout
            self.add_module(name, nn.Sequential(*blocks))
            self.out_channels.append(cout)
            cout *= 2
            bottleneck *= 2

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.stem(x)
        outs = []
        for name in self.stage_names:
            x = getattr(self, name)(x)
            outs.append(x)
        return outs


class FPN(nn.Module):
    """Top-down pathway with lateral 1x1 and output 3x3 convs, plus P6 by max pooling."""

    size_divisibility = 32

    def __init__(self, cfg: D2Config) -> None:
        super().__init__()
        self.bottom_up = ResNet(cfg)
        out = cfg["MODEL.FPN.OUT_CHANNELS"]
        self.fuse_avg = cfg["MODEL.FPN.FUSE_TYPE"] == "avg"
        self.stages = (2, 3, 4, 5)
        for stage, cin in zip(self.stages, self.bottom_up.out_channels, strict=True):
            self.add_module(f"fpn_lateral{stage}", Conv2d(cin, out, 1))
            self.add_module(f"fpn_output{stage}", Conv2d(out, out, 3, padding=1))
        self.out_channels = out

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Image batch -> [p2, p3, p4, p5, p6]."""
        feats = self.bottom_up(x)
        prev = self.fpn_lateral5(feats[-1])
        results = [self.fpn_output5(prev)]
        for stage, feat in zip(self.stages[-2::-1], feats[-2::-1], strict=True):
            top_down = F.interpolate(prev, scale_factor=2.0, mode="nearest")
            prev = getattr(self, f"fpn_lateral{stage}")(feat) + top_down
            if self.fuse_avg:
                prev /= 2
            results.insert(0, getattr(self, f"fpn_output{stage}")(prev))
        results.append(F.max_pool2d(results[-1], kernel_size=1, stride=2, padding=0))
        return results
