"""``format = "ultralytics"``: a YOLOv8 / YOLO11 pose ``.pt`` checkpoint, without ultralytics.

Loading: the static scan must pass with the reviewed Ultralytics allow-list opted in (card key
``[model] allowlist = "ultralytics"`` or ``kp_security(allowlist=["ultralytics"])``), then
``torch.load(weights_only=True)`` rebuilds the module tree into the plugin's stand-in classes
(``standins.STAND_INS``); ``check_tree`` validates it before anything runs. The model is the
checkpoint's ``ema`` when set, else its ``model`` (as Ultralytics picks), in fp32.

Inference (``[model.kwargs]``, defaults = Ultralytics' ``val`` settings):

``imgsz``      network size (default: the checkpoint's ``train_args.imgsz``, else its
               ``args.imgsz``, else 640), rounded up to a multiple of the stride as Ultralytics'
               ``check_imgsz`` does
``letterbox``  ``"val"`` (default, = ``model.val()``), ``"predict"`` (= ``model.predict()``) or
               ``"square"`` (fixed imgsz x imgsz, as exports get); see ``preprocess``
``conf``       score threshold, default 0.001 (val; predict uses 0.25)
``iou``        NMS IoU threshold, default 0.7
``max_det``    detections kept per image, default 300

Output: xyxy boxes and keypoints in original-image pixels, the class score, label = class
index + 1 (1 = person for a one-class pose model), keypoint scores = the sigmoid visibility
(1.0 for ``kpt_shape [K, 2]`` models). The checkpoint's ``kpt_shape`` must have as many
keypoints as the card's ``[keypoints]`` (COCO-17 by default), which supplies names, flip pairs
and OKS sigmas.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from ...errors import AdapterError
from ..base import Prediction
from ..options import LoadOptions
from .kwargs import model_of, settings

PROFILE = "ultralytics"


def read_checkpoint(path: Path, options: LoadOptions, profiles: tuple[str, ...]) -> Any:
    """The checkpoint dict, loaded with ``weights_only=True`` into the stand-in classes."""
    from ..state_dict import load_safely
    from .standins import STAND_INS

    extra = tuple(g for g in options.extra_globals if g not in STAND_INS)
    return load_safely(path, options, "not a readable Ultralytics checkpoint",
                       extra_globals=extra, allowlists=profiles, stand_ins=STAND_INS)  # fmt: skip


def load(card, options: LoadOptions):
    from .standins import check_tree

    path = Path(card.model.weights)
    profiles = tuple(dict.fromkeys((*card.model.allowlist, *options.allowlists)))
    checkpoint = read_checkpoint(path, options, profiles)
    if not isinstance(checkpoint, dict) or model_of(checkpoint) is None:
        raise AdapterError(
            f"{path}: not an Ultralytics checkpoint (a dict with 'model' or 'ema'); got "
            f"{type(checkpoint).__name__}"
        )
    module = model_of(checkpoint)
    check_tree(module, str(path))
    k = module.head.num_keypoints
    if k != card.keypoints.num_keypoints:
        raise AdapterError(
            f"{path}: the checkpoint's kpt_shape {list(module.head.kpt_shape)} has {k} keypoints "
            f"but the card {card.path} declares {card.keypoints.label} in [keypoints]"
        )
    stride = max(int(module.stride.max()), 32)
    return UltralyticsPoseModel(module, settings(card, checkpoint, stride), options, card)


def fuse(module):
    """Fold each Conv's batch norm into its convolution, as Ultralytics does before ``val`` and
    ``predict`` (``AutoBackend(fuse=True)``), with torch's own ``fuse_conv_bn_weights``: the
    same arithmetic, so the same outputs to the last bit, and faster."""
    import torch
    from torch.nn.utils.fusion import fuse_conv_bn_weights

    from .blocks import Conv

    with torch.no_grad():
        for m in module.modules():
            bn = m._modules.get("bn") if isinstance(m, Conv) else None
            if bn is None:
                continue
            conv = m.conv
            conv.weight, conv.bias = fuse_conv_bn_weights(
                conv.weight, conv.bias, bn.running_mean, bn.running_var, bn.eps, bn.weight, bn.bias
            )
            del m._modules["bn"]
    return module


class UltralyticsPoseModel:
    """A loaded YOLO-pose network behind ``KeypointModel.predict``."""

    def __init__(self, module: Any, config: dict[str, Any], options: LoadOptions, card) -> None:
        import torch

        from ..torch_module import autocast_dtype

        self.device = torch.device(options.device)
        self.precision = options.precision
        if options.precision == "fp16" and self.device.type != "cuda":
            raise AdapterError(
                f"precision fp16 needs a CUDA device (got {self.device}); use bf16 on the CPU"
            )
        self._autocast = autocast_dtype(options.precision)
        self.module = fuse(module.float().eval()).to(self.device)
        self.config = config
        self.card = card
        self.name = card.model.name
        self.stride = max(int(module.stride.max()), 32)
        head = module.head
        self.nc = int(head.nc)
        self.kpt_shape = (int(head.kpt_shape[0]), int(head.kpt_shape[1]))
        self.num_keypoints = self.kpt_shape[0]

    def with_precision(self, precision: str) -> UltralyticsPoseModel:
        """The same network under another autocast dtype (for ``kp_bench`` / ``kp_parity``)."""
        from ..torch_module import autocast_dtype

        if precision == "fp16" and self.device.type != "cuda":
            raise AdapterError(
                f"precision fp16 needs a CUDA device (got {self.device}); use bf16 on the CPU"
            )
        other = copy.copy(self)
        other.precision = precision
        other._autocast = autocast_dtype(precision)
        return other

    def predict(self, images: list) -> list[Prediction]:
        import torch

        from . import preprocess

        mode = self.config["letterbox"]
        boxes = [
            preprocess.plan(tuple(im.shape[1:]), self.config["imgsz"], self.stride, mode)
            for im in images
        ]
        out: list[Prediction | None] = [None] * len(images)
        groups: dict[tuple[int, int], list[int]] = {}
        for i, box in enumerate(boxes):
            groups.setdefault(box.input_hw, []).append(i)
        with torch.inference_mode():
            for idx in groups.values():
                batch = torch.cat(
                    [preprocess.apply(images[i].to(self.device), boxes[i]) for i in idx]
                )
                raw = self.forward(batch)
                for row, i in enumerate(idx):
                    out[i] = self.decode(raw[row], boxes[i])
        return [p for p in out if p is not None]

    def forward(self, batch):
        """The network on a letterboxed ``[B, 3, H, W]`` batch -> head output, in fp32."""
        import torch

        if self._autocast is None:
            return self.module(batch)
        with torch.autocast(self.device.type, dtype=self._autocast):
            return self.module(batch).float()

    def onnx_variant(self, workdir: Path, example_images: list):
        """(ONNX Runtime model, notes) for ``kp_parity``'s ``onnx`` row: the network exported
        with dynamic H/W in Ultralytics' layout, decoded by the ``yolo-pose`` layout with this
        model's settings, so the row measures the export alone."""
        from . import preprocess
        from .onnx_layout import YoloPoseOnnxModel, export_onnx

        image = example_images[0].float()
        if image.max() > 1:
            image = image / 255
        box = preprocess.plan(tuple(image.shape[1:]), self.config["imgsz"], self.stride, "val")
        path = export_onnx(self.module, Path(workdir) / "model.onnx", preprocess.apply(image, box))
        onnx_model = YoloPoseOnnxModel(
            path, self.device, self.card, dict(self.config), (self.kpt_shape, self.stride, self.nc)
        )
        return onnx_model, "network exported to ONNX (dynamic H/W); letterbox and NMS as eager"

    def decode(self, raw, box) -> Prediction:
        """One image's head output ``[4 + nc + K*D, N]`` -> ``Prediction`` in image pixels."""
        from .postprocess import decode_head_output

        return decode_head_output(raw, box, self.nc, self.kpt_shape, self.config)
