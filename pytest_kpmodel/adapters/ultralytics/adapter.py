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
import math
from pathlib import Path
from typing import Any

from ...errors import AdapterError, KpModelError, first_line
from ..base import Prediction
from ..options import LoadOptions

KWARGS = ("imgsz", "letterbox", "conf", "iou", "max_det")
DEFAULTS = {"letterbox": "val", "conf": 0.001, "iou": 0.7, "max_det": 300}
PROFILE = "ultralytics"


def settings(card, checkpoint: dict[str, Any] | None, stride: int) -> dict[str, Any]:
    """The card's ``[model.kwargs]`` checked, with the defaults filled in."""
    from .preprocess import MODES

    kwargs = dict(card.model.kwargs)
    where = f"{card.path}: [model.kwargs]"
    unknown = sorted(set(kwargs) - set(KWARGS))
    if unknown:
        raise AdapterError(
            f"{where} unknown key {unknown[0]!r} for format 'ultralytics'; "
            f"allowed: {', '.join(KWARGS)}"
        )
    out: dict[str, Any] = {**DEFAULTS, **kwargs}
    imgsz = out.get("imgsz")
    if imgsz is None:
        imgsz = _checkpoint_imgsz(checkpoint)
    if isinstance(imgsz, bool) or not isinstance(imgsz, int) or imgsz <= 0:
        raise AdapterError(f"{where} imgsz must be a positive integer, got {imgsz!r}")
    out["imgsz"] = max(math.ceil(imgsz / stride) * stride, stride)
    if out["letterbox"] not in MODES:
        raise AdapterError(
            f"{where} letterbox must be one of {', '.join(MODES)}, got {out['letterbox']!r}"
        )
    for key in ("conf", "iou"):
        v = out[key]
        if isinstance(v, bool) or not isinstance(v, int | float) or not 0 <= v <= 1:
            raise AdapterError(f"{where} {key} must be a number in [0, 1], got {v!r}")
        out[key] = float(v)
    md = out["max_det"]
    if isinstance(md, bool) or not isinstance(md, int) or md <= 0:
        raise AdapterError(f"{where} max_det must be a positive integer, got {md!r}")
    return out


def _checkpoint_imgsz(checkpoint: dict[str, Any] | None) -> Any:
    if checkpoint is None:
        return 640
    for source in (checkpoint.get("train_args"), getattr(_model_of(checkpoint), "args", None)):
        if isinstance(source, dict) and "imgsz" in source:
            value = source["imgsz"]
            if isinstance(value, list | tuple) and value:
                value = max(value)  # Ultralytics validates at the largest side
            return value
    return 640


def _model_of(checkpoint: dict[str, Any]) -> Any:
    return checkpoint.get("ema") or checkpoint.get("model")


def read_checkpoint(path: Path, options: LoadOptions, profiles: tuple[str, ...]) -> Any:
    """The checkpoint dict, loaded with ``weights_only=True`` into the stand-in classes."""
    import pickle

    from ...security import load_state_dict_safely
    from .standins import STAND_INS

    extra = tuple(g for g in options.extra_globals if g not in STAND_INS)
    try:
        return load_state_dict_safely(
            path,
            options.scan_report,
            extra_globals=extra,
            allowlists=profiles,
            stand_ins=STAND_INS,
        )
    except KpModelError:
        raise
    except (pickle.UnpicklingError, RuntimeError, OSError, EOFError, ValueError) as exc:
        raise AdapterError(
            f"{path}: not a readable Ultralytics checkpoint: {first_line(exc)}"
        ) from None


def load(card, options: LoadOptions):
    from .standins import check_tree

    path = Path(card.model.weights)
    profiles = tuple(dict.fromkeys((*card.model.allowlist, *options.allowlists)))
    checkpoint = read_checkpoint(path, options, profiles)
    if not isinstance(checkpoint, dict) or _model_of(checkpoint) is None:
        raise AdapterError(
            f"{path}: not an Ultralytics checkpoint (a dict with 'model' or 'ema'); got "
            f"{type(checkpoint).__name__}"
        )
    module = _model_of(checkpoint)
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
        return decode_head_output(raw, box, self.nc, self.kpt_shape, self.config)


def decode_head_output(raw, box, nc: int, kpt_shape: tuple[int, int], config) -> Prediction:
    """Shared by the eager adapter and the ONNX ``yolo-pose`` layout."""
    import torch

    from .postprocess import nms, to_original

    det = nms(
        raw.float(),
        nc,
        kpt_shape,
        config["conf"],
        config["iou"],
        config["max_det"],
        multi_label=config["letterbox"] == "val",
    )
    det = to_original(det, box)
    kpts = det.keypoints[..., :3]
    if kpt_shape[1] == 2:
        kpts = torch.cat([kpts, torch.ones_like(kpts[..., :1])], -1)
    return Prediction(
        boxes=det.boxes, scores=det.scores, labels=det.classes.long() + 1, keypoints=kpts
    )
