"""``format = "detectron2"``: a detectron2 keypoint R-CNN checkpoint run without detectron2.

``load(card, options)`` validates the config (``config.parse_config``), builds the model in
plain torch/torchvision ops (``model.GeneralizedRCNN``), loads the ``.pkl`` or ``.pth`` weights
(``checkpoint.load_weights``, after the static scan passed) and returns a ``KeypointModel``.

``predict`` does what ``DefaultPredictor`` does per image (``preprocess``), but runs images
whose resized sizes are equal as one batch: they need no extra padding, so each image's result
is the one it gets alone. Labels are detectron2's 0-based classes + 1 (person = 1).
"""

from __future__ import annotations

from typing import Any

from ...errors import AdapterError, CardError
from ..base import Prediction
from ..options import LoadOptions
from .config import D2Config, parse_config


def torch_cpu():
    import torch

    return torch.device("cpu")


def load(card, options: LoadOptions):
    cfg = parse_config(card)
    k = card.keypoints.num_keypoints
    if cfg.num_keypoints != k:
        raise CardError(
            card.path,
            f"the model predicts {cfg.num_keypoints} keypoints and [keypoints] names {k}; set "
            f'"MODEL.ROI_KEYPOINT_HEAD.NUM_KEYPOINTS" = {k} or describe the model\'s keypoints',
            'model.kwargs."MODEL.ROI_KEYPOINT_HEAD.NUM_KEYPOINTS"',
        )
    from .checkpoint import load_weights
    from .model import GeneralizedRCNN

    module = GeneralizedRCNN(cfg)
    load_weights(module, card.model.weights, options.scan_report, card.path, options.extra_globals)
    return Detectron2KeypointModel(module, cfg, options, card.model.name)


class Detectron2KeypointModel:
    """``KeypointModel`` around ``GeneralizedRCNN`` with detectron2's pre/postprocessing."""

    def __init__(self, module, cfg: D2Config, options: LoadOptions, name: str = "") -> None:
        import torch

        self.device = torch.device(options.device)
        self.precision = options.precision
        if self.precision == "fp16" and self.device.type != "cuda":
            raise AdapterError(
                f"precision fp16 needs a CUDA device (got {self.device}); use bf16 on the CPU"
            )
        self.cfg = cfg
        self.num_keypoints = cfg.num_keypoints
        self.name = name
        self.module = module.to(self.device).eval()
        self.bgr = cfg["INPUT.FORMAT"] == "BGR"
        self.min_size = int(cfg["INPUT.MIN_SIZE_TEST"])
        self.max_size = int(cfg["INPUT.MAX_SIZE_TEST"])

    def predict(self, images: list) -> list[Prediction]:
        import torch

        from .preprocess import network_input, postprocess, resize, to_uint8_hwc

        inputs, originals = [], []
        for image in images:
            if image.ndim != 3 or image.shape[0] != 3:
                raise AdapterError(
                    f"detectron2 model: expected a 3xHxW image, got shape {tuple(image.shape)}"
                )
            originals.append((int(image.shape[1]), int(image.shape[2])))
            pixels = resize(to_uint8_hwc(image, self.bgr), self.min_size, self.max_size)
            inputs.append(network_input(pixels, self.device))
        groups: dict[tuple[int, int], list[int]] = {}
        for i, x in enumerate(inputs):
            groups.setdefault((int(x.shape[1]), int(x.shape[2])), []).append(i)
        out: list[Any] = [None] * len(images)
        with torch.inference_mode(), self._autocast():
            for size, idx in groups.items():
                for i, inst in zip(idx, self.module([inputs[i] for i in idx]), strict=True):
                    boxes, kps, keep = postprocess(
                        inst.boxes.float(), inst.keypoints.float(), size, originals[i]
                    )
                    out[i] = Prediction(
                        boxes, inst.scores[keep].float(), inst.classes[keep] + 1, kps
                    )
        return out

    def with_precision(self, precision: str) -> Detectron2KeypointModel:
        """The same network under another autocast precision (for kp_bench and kp_parity)."""
        options = LoadOptions(device=str(self.device), precision=precision)
        return Detectron2KeypointModel(self.module, self.cfg, options, self.name)

    def onnx_variant(self, workdir, example_images: list):
        """(ONNX Runtime model, notes) for ``kp_parity``'s ``onnx`` row: this network exported
        in detectron2's export layout (``onnx_graph``), run by the ``detectron2`` ONNX layout
        with this model's resize, so the row measures the export alone."""
        from pathlib import Path

        from .onnx_graph import export
        from .onnx_layout import Detectron2OnnxModel, write_metadata
        from .preprocess import network_input, resize, to_uint8_hwc

        image = example_images[0].float()
        if image.max() > 1:
            image = image / 255
        pixels = resize(to_uint8_hwc(image, self.bgr), self.min_size, self.max_size)
        path = Path(workdir) / "model.onnx"
        export(self.module, path, network_input(pixels, torch_cpu()))  # failure: the row skips
        write_metadata(path, self.cfg)
        model = Detectron2OnnxModel(path, self.device, self.num_keypoints, name=self.name)
        return model, (
            "the plugin's detectron2 graph in detectron2's export layout (TorchScript-based "
            "exporter, dynamic H/W); resize and postprocessing as eager; onnxruntime"
        )

    def _autocast(self):
        import contextlib

        import torch

        if self.precision == "fp32":
            return contextlib.nullcontext()
        dtype = torch.float16 if self.precision == "fp16" else torch.bfloat16
        return torch.autocast(self.device.type, dtype=dtype)
