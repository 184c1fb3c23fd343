"""The plugin's own forward passes for the Ultralytics v8 / 11 building blocks.

Each class stands in for the ``ultralytics`` class named by its ``ULTRALYTICS`` attribute: the
checkpoint's unpickler creates it with ``__new__`` and fills its ``__dict__`` from the file
(``nn.Module.__setstate__``), so no ``__init__`` of ours ever runs on loading and the attributes
are exactly the ones Ultralytics stored. ``check`` validates the attributes ``forward`` reads
before the model is used, so a malformed file fails with a message naming the module and the
attribute instead of a traceback from inside torch.

Written from the behaviour of ``ultralytics.nn.modules`` (conv.py, block.py) in eval mode.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from ...errors import AdapterError


class StandIn(nn.Module):
    """Base of the stand-ins: the Ultralytics name and the attribute checks."""

    ULTRALYTICS: ClassVar[str] = ""
    # attribute -> accepted types, for attributes forward reads (missing ones use DEFAULTS)
    ATTRS: ClassVar[dict[str, tuple[type, ...]]] = {}
    DEFAULTS: ClassVar[dict[str, Any]] = {}
    CHILDREN: ClassVar[tuple[str, ...]] = ()

    def check(self, where: str) -> None:
        for name in self.CHILDREN:
            if not isinstance(self._modules.get(name), nn.Module):
                raise AdapterError(f"{where} ({self.ULTRALYTICS}) has no submodule {name!r}")
        for name, types in self.ATTRS.items():
            if name not in self.__dict__:
                if name in self.DEFAULTS:
                    continue
                raise AdapterError(f"{where} ({self.ULTRALYTICS}) has no attribute {name!r}")
            value = self.__dict__[name]
            if isinstance(value, bool) and bool not in types:
                ok = False
            else:
                ok = isinstance(value, types)
            if not ok:
                raise AdapterError(
                    f"{where} ({self.ULTRALYTICS}).{name} is a {type(value).__name__}, expected "
                    + " or ".join(t.__name__ for t in types)
                )

    def attr(self, name: str) -> Any:
        return self.__dict__.get(name, self.DEFAULTS.get(name))


class Conv(StandIn):
    """Conv2d -> BatchNorm2d -> activation (a checkpoint saved after ``fuse()`` has no bn)."""

    ULTRALYTICS = "ultralytics.nn.modules.conv.Conv"
    CHILDREN = ("conv", "act")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        bn = self._modules.get("bn")
        if bn is not None:
            y = bn(y)
        return self.act(y)


class DWConv(Conv):
    """Depth-wise Conv: the grouping lives in the stored Conv2d."""

    ULTRALYTICS = "ultralytics.nn.modules.conv.DWConv"


class Concat(StandIn):
    ULTRALYTICS = "ultralytics.nn.modules.conv.Concat"
    ATTRS = {"d": (int,)}

    def forward(self, xs: list[torch.Tensor]) -> torch.Tensor:
        return torch.cat(xs, self.d)


class Bottleneck(StandIn):
    ULTRALYTICS = "ultralytics.nn.modules.block.Bottleneck"
    ATTRS = {"add": (bool,)}
    CHILDREN = ("cv1", "cv2")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.cv2(self.cv1(x))
        return x + y if self.add else y


class C2f(StandIn):
    """Split cv1's output in two, chain the inner blocks on the second half, fuse all with cv2."""

    ULTRALYTICS = "ultralytics.nn.modules.block.C2f"
    CHILDREN = ("cv1", "cv2", "m")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = list(self.cv1(x).chunk(2, 1))
        for block in self.m:
            y.append(block(y[-1]))
        return self.cv2(torch.cat(y, 1))


class C3k2(C2f):
    ULTRALYTICS = "ultralytics.nn.modules.block.C3k2"


class C3k(StandIn):
    """C3: inner blocks on cv1's branch, cv2 as the shortcut branch, fused by cv3."""

    ULTRALYTICS = "ultralytics.nn.modules.block.C3k"
    CHILDREN = ("cv1", "cv2", "cv3", "m")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cv3(torch.cat((self.m(self.cv1(x)), self.cv2(x)), 1))


class SPPF(StandIn):
    """cv1, then n chained max-pools, all concatenated into cv2 (plus x when ``add``)."""

    ULTRALYTICS = "ultralytics.nn.modules.block.SPPF"
    ATTRS = {"n": (int,), "add": (bool,)}
    DEFAULTS = {"n": 3, "add": False}  # checkpoints older than these attributes
    CHILDREN = ("cv1", "cv2", "m")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = [self.cv1(x)]
        for _ in range(self.attr("n")):
            y.append(self.m(y[-1]))
        out = self.cv2(torch.cat(y, 1))
        return out + x if self.attr("add") else out


class Attention(StandIn):
    """Multi-head self-attention over the H*W positions, plus a depth-wise positional conv."""

    ULTRALYTICS = "ultralytics.nn.modules.block.Attention"
    ATTRS = {"num_heads": (int,), "head_dim": (int,), "key_dim": (int,), "scale": (float,)}
    CHILDREN = ("qkv", "proj", "pe")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        n = h * w
        qkv = self.qkv(x).view(b, self.num_heads, self.key_dim * 2 + self.head_dim, n)
        q, k, v = qkv.split([self.key_dim, self.key_dim, self.head_dim], dim=2)
        attn = ((q * self.scale).transpose(-2, -1) @ k).softmax(dim=-1)
        y = (v @ attn.transpose(-2, -1)).view(b, c, h, w) + self.pe(v.reshape(b, c, h, w))
        return self.proj(y)


class PSABlock(StandIn):
    ULTRALYTICS = "ultralytics.nn.modules.block.PSABlock"
    ATTRS = {"add": (bool,)}
    CHILDREN = ("attn", "ffn")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(x) if self.add else self.attn(x)
        return x + self.ffn(x) if self.add else self.ffn(x)


class C2PSA(StandIn):
    ULTRALYTICS = "ultralytics.nn.modules.block.C2PSA"
    ATTRS = {"c": (int,)}
    CHILDREN = ("cv1", "cv2", "m")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = self.cv1(x).split((self.c, self.c), dim=1)
        return self.cv2(torch.cat((a, self.m(b)), 1))


class DFL(StandIn):
    """Expected value of each side's distance over ``c1`` bins: softmax, then the stored 1x1 conv
    (whose weights are 0..c1-1)."""

    ULTRALYTICS = "ultralytics.nn.modules.block.DFL"
    ATTRS = {"c1": (int,)}
    CHILDREN = ("conv",)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, a = x.shape
        return self.conv(x.view(b, 4, self.c1, a).transpose(2, 1).softmax(1)).view(b, 4, a)
