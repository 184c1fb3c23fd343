"""The Ultralytics ``Pose`` head (v8 / 11) and the ``PoseModel`` root, in eval mode.

The head's output is the tensor Ultralytics' own exports emit, ``[B, 4 + nc + K*D, N]`` over the
``N`` anchors of all strides: box centre x, y, width, height in input pixels (DFL distances
around each anchor times its stride), the class scores after a sigmoid, and the keypoints
``(x * 2 + anchor - 0.5) * stride`` for x and y with a sigmoid visibility when ``D == 3``.
``postprocess.decode_output`` turns it into detections; the ONNX ``yolo-pose`` layout feeds the
same function.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ...errors import AdapterError
from .blocks import StandIn


def make_anchors(
    shapes: list[tuple[Any, Any]], strides: list[float], dtype: torch.dtype, device: Any
) -> tuple[torch.Tensor, torch.Tensor]:
    """Anchor centres ``[N, 2]`` (x, y in grid cells, + 0.5) and their strides ``[N, 1]``,
    level by level, row-major within a level."""
    points, stride_list = [], []
    for (h, w), stride in zip(shapes, strides, strict=True):
        sx = torch.arange(w, device=device, dtype=dtype) + 0.5
        sy = torch.arange(h, device=device, dtype=dtype) + 0.5
        gy, gx = torch.meshgrid(sy, sx, indexing="ij")
        points.append(torch.stack((gx, gy), -1).view(-1, 2))
        stride_list.append(torch.full((h * w, 1), float(stride), device=device, dtype=dtype))
    return torch.cat(points), torch.cat(stride_list)


class Pose(StandIn):
    ULTRALYTICS = "ultralytics.nn.modules.head.Pose"
    ATTRS = {
        "nc": (int,),
        "nl": (int,),
        "reg_max": (int,),
        "kpt_shape": (list, tuple),
        "stride": (torch.Tensor,),
        "xyxy": (bool,),
    }
    DEFAULTS = {"xyxy": False}
    CHILDREN = ("cv2", "cv3", "cv4", "dfl")

    def check(self, where: str) -> None:
        super().check(where)
        self.__dict__.pop("_level_strides", None)  # derived from the checked stride only
        if self._modules.get("one2one_cv2") is not None:
            raise AdapterError(
                f"{where} ({self.ULTRALYTICS}) has an end-to-end (one-to-one) head; only the "
                "YOLOv8 / YOLO11 pose head with NMS is supported"
            )
        shape = self.kpt_shape
        if not (len(shape) == 2 and all(type(v) is int for v in shape) and shape[1] in (2, 3)):
            raise AdapterError(f"{where}.kpt_shape is {list(shape)}; expected [K, 2] or [K, 3]")
        if shape[0] < 1:
            raise AdapterError(f"{where}.kpt_shape is {list(shape)}; expected at least 1 keypoint")
        for name in ("cv2", "cv3", "cv4"):
            branch = self._modules[name]
            if not isinstance(branch, nn.ModuleList) or len(branch) != self.nl:
                raise AdapterError(f"{where}.{name} must hold one branch per level ({self.nl})")
        if self.stride.numel() != self.nl:
            raise AdapterError(
                f"{where}.stride has {self.stride.numel()} values for {self.nl} levels"
            )

    @property
    def level_strides(self) -> list[float]:
        """The strides as Python numbers (read once: exporters cannot follow ``tolist()``)."""
        cached = self.__dict__.get("_level_strides")
        if cached is None:
            cached = [float(s) for s in self.stride.tolist()]
            self.__dict__["_level_strides"] = cached
        return cached

    @property
    def num_keypoints(self) -> int:
        return int(self.kpt_shape[0])

    def forward(self, feats: list[torch.Tensor]) -> torch.Tensor:
        b = feats[0].shape[0]
        k, d = int(self.kpt_shape[0]), int(self.kpt_shape[1])
        box = torch.cat(
            [self.cv2[i](feats[i]).view(b, 4 * self.reg_max, -1) for i in range(self.nl)], -1
        )
        cls = torch.cat([self.cv3[i](feats[i]).view(b, self.nc, -1) for i in range(self.nl)], -1)
        kpt = torch.cat([self.cv4[i](feats[i]).view(b, k * d, -1) for i in range(self.nl)], -1)
        # shapes stay symbolic (no int()) so that an ONNX export keeps dynamic image sizes
        shapes = [(f.shape[2], f.shape[3]) for f in feats]
        anchors, stride_t = make_anchors(shapes, self.level_strides, box.dtype, box.device)
        anchors, stride_t = anchors.transpose(0, 1), stride_t.transpose(0, 1)  # [2, N], [1, N]
        dist = self.dfl(box)  # [B, 4, N] distances left, top, right, bottom in grid cells
        lt, rb = dist.chunk(2, 1)
        x1y1 = anchors.unsqueeze(0) - lt
        x2y2 = anchors.unsqueeze(0) + rb
        if self.attr("xyxy"):
            boxes = torch.cat((x1y1, x2y2), 1)
        else:
            boxes = torch.cat(((x1y1 + x2y2) / 2, x2y2 - x1y1), 1)
        boxes = boxes * stride_t
        y = kpt.view(b, k, d, -1)
        xy = (y[:, :, :2] * 2.0 + (anchors - 0.5)) * stride_t
        parts = [xy, y[:, :, 2:3].sigmoid()] if d == 3 else [xy]
        kpts = torch.cat(parts, 2).view(b, k * d, -1)
        return torch.cat((boxes, cls.sigmoid(), kpts), 1)


class PoseModel(StandIn):
    """Runs the layer list: each layer reads the previous output or, by ``f``, earlier saved
    outputs (``save``), as Ultralytics' ``BaseModel._predict_once`` does."""

    ULTRALYTICS = "ultralytics.nn.tasks.PoseModel"
    ATTRS = {"save": (list, tuple), "stride": (torch.Tensor,)}
    CHILDREN = ("model",)

    def check(self, where: str) -> None:
        super().check(where)
        layers = self._modules["model"]
        if not isinstance(layers, nn.Sequential) or len(layers) == 0:
            raise AdapterError(f"{where}.model must be a non-empty Sequential of layers")
        if not all(type(i) is int for i in self.save):
            raise AdapterError(f"{where}.save must be a list of layer indices")
        for n, layer in enumerate(layers):
            f = layer.__dict__.get("f")
            ok = type(f) is int or (
                isinstance(f, list | tuple) and f and all(type(j) is int for j in f)
            )
            if not ok or layer.__dict__.get("i") != n:
                raise AdapterError(
                    f"{where}.model.{n} lacks Ultralytics' layer index i={n} and input index f"
                )
            for j in [f] if type(f) is int else f:
                if j != -1 and not (0 <= j < n and j in self.save):
                    raise AdapterError(
                        f"{where}.model.{n} reads layer {j}, which is not an earlier saved layer"
                    )
        if not isinstance(layers[-1], Pose):
            raise AdapterError(
                f"{where}: the last layer is {type(layers[-1]).__name__}, not a Pose head"
            )

    @property
    def head(self) -> Pose:
        return self.model[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outputs: list[torch.Tensor | None] = []
        for layer in self.model:
            f = layer.f
            if f != -1:
                x = outputs[f] if isinstance(f, int) else [x if j == -1 else outputs[j] for j in f]
            x = layer(x)
            outputs.append(x if layer.i in self.save else None)
        return x
