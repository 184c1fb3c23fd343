"""The two layers detectron2's keypoint R-CNN is built from, with detectron2's parameter names.

``FrozenBatchNorm2d`` keeps ``weight``, ``bias``, ``running_mean`` and ``running_var`` as buffers
and, as detectron2 does when no gradient is needed, calls ``F.batch_norm(training=False)`` (not
the folded ``x * scale + shift`` of torchvision's FrozenBatchNorm2d, which rounds differently).
``Conv2d`` is a plain convolution followed by an optional ``norm`` submodule, so a checkpoint's
``....conv1.weight`` and ``....conv1.norm.running_var`` land where detectron2 keeps them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class FrozenBatchNorm2d(nn.Module):
    def __init__(self, num_features: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.num_features = num_features
        self.eps = eps
        self.register_buffer("weight", torch.ones(num_features))
        self.register_buffer("bias", torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features) - eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.batch_norm(
            x,
            self.running_mean,
            self.running_var,
            self.weight,
            self.bias,
            training=False,
            eps=self.eps,
        )


class Conv2d(nn.Conv2d):
    """``nn.Conv2d`` + optional ``norm`` (before the activation, which callers apply)."""

    def __init__(self, *args, norm: nn.Module | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.norm = norm

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.conv2d(
            x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups
        )
        if self.norm is not None:
            x = self.norm(x)
        return x
