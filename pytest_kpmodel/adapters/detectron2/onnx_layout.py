"""``format = "onnx"`` with ``output_layout = "detectron2"``: a detectron2-style export.

The graph's interface is detectron2's tracing export (``TracingAdapter`` around
``model.inference(..., do_postprocess=False)``, see ``onnx_graph``): one input, the resized
``[3, H, W]`` float image in 0-255 in the model's channel order; outputs ``pred_boxes``,
``pred_classes``, ``pred_keypoint_heatmaps``, ``pred_keypoints``, ``scores`` (and ``image_size``),
by name when the graph names them so, else by position in that order. This adapter does what
``DefaultPredictor`` does around it: uint8 rounding, BGR, ``ResizeShortestEdge`` and
``detector_postprocess`` (see ``preprocess``).

Resize and channel order come from the card's ``[model.kwargs]`` (``INPUT.MIN_SIZE_TEST``,
``INPUT.MAX_SIZE_TEST``, ``INPUT.FORMAT``, validated like a detectron2 card's), else from the
graph's metadata (written by the plugin's own export), else from the zoo config (800, 1333,
BGR). Every other config key is baked into the graph and refused.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ...errors import AdapterError, CardError
from ..base import Prediction
from ..onnx_runtime import check_external_data, open_session, require_fp32
from ..options import LoadOptions
from .onnx_graph import OUTPUT_NAMES

INPUT_KEYS = ("INPUT.MIN_SIZE_TEST", "INPUT.MAX_SIZE_TEST", "INPUT.FORMAT")
META_PREFIX = "detectron2:"


def load_detectron2_onnx(card, options: LoadOptions):
    require_fp32(card, options)
    path = Path(card.model.weights)
    check_external_data(path, card.folder)
    settings = card_settings(card)
    return Detectron2OnnxModel(
        path, options.device, card.keypoints.num_keypoints, settings, card.model.name
    )


def card_settings(card) -> dict[str, Any]:
    """The INPUT.* keys of ``[model.kwargs]``, type- and range-checked."""
    from .config import _check_value, _flatten
    from .config_defaults import BASE

    out: dict[str, Any] = {}
    for key, value in _flatten(card.model.kwargs).items():
        if key not in INPUT_KEYS:
            raise CardError(
                card.path,
                "an ONNX export has every other detectron2 config key baked into its graph; "
                f"only {', '.join(INPUT_KEYS)} apply to output_layout 'detectron2'",
                f'model.kwargs."{key}"',
            )
        out[key] = _check_value(card.path, key, value, BASE)
    return out


class Detectron2OnnxModel:
    """ONNX Runtime session behind ``KeypointModel.predict``, one image per run."""

    precision = "fp32"

    def __init__(
        self,
        path: Path,
        device: Any,
        num_keypoints: int,
        settings: dict[str, Any] | None = None,
        name: str = "",
    ) -> None:
        import torch

        from .config_defaults import BASE

        self.path = Path(path)
        self.device = torch.device(device)
        self.num_keypoints = num_keypoints
        self.name = name
        self.session = open_session(self.path, device)
        inputs = self.session.get_inputs()
        if len(inputs) != 1 or (inputs[0].shape is not None and len(inputs[0].shape) != 3):
            raise AdapterError(
                f"{path}: output_layout 'detectron2' expects one [3, H, W] image input (detectron2's "
                f"tracing export), got {[(i.name, i.shape) for i in inputs]}"
            )
        self.input_name = inputs[0].name
        names = [o.name for o in self.session.get_outputs()]
        if set(OUTPUT_NAMES[:5]) <= set(names):
            self.order = [names.index(n) for n in OUTPUT_NAMES[:5]]
        elif len(names) in (5, 6):
            self.order = list(range(5))
        else:
            raise AdapterError(
                f"{path}: outputs {names} are not detectron2's export layout ("
                + ", ".join(OUTPUT_NAMES)
                + ")"
            )
        meta = self.session.get_modelmeta().custom_metadata_map or {}
        cfg = {k: BASE[k] for k in INPUT_KEYS}
        for key in INPUT_KEYS:
            if META_PREFIX + key in meta:
                raw = meta[META_PREFIX + key]
                cfg[key] = raw if key == "INPUT.FORMAT" else int(raw)
        cfg.update(settings or {})
        self.min_size = int(cfg["INPUT.MIN_SIZE_TEST"])
        self.max_size = int(cfg["INPUT.MAX_SIZE_TEST"])
        self.bgr = cfg["INPUT.FORMAT"] == "BGR"

    def predict(self, images: list) -> list[Prediction]:
        return [self._predict_one(im) for im in images]

    def _predict_one(self, image) -> Prediction:
        import numpy as np
        import torch

        from .preprocess import postprocess, resize, to_uint8_hwc

        original = (int(image.shape[1]), int(image.shape[2]))
        pixels = resize(to_uint8_hwc(image, self.bgr), self.min_size, self.max_size)
        x = np.ascontiguousarray(pixels.astype("float32").transpose(2, 0, 1))
        outs = self.session.run(None, {self.input_name: x})
        boxes, classes, _heatmaps, keypoints, scores = (outs[i] for i in self.order)
        k = self.num_keypoints
        boxes_t = torch.from_numpy(np.asarray(boxes, np.float32)).reshape(-1, 4)
        kps_t = torch.from_numpy(np.asarray(keypoints, np.float32)).reshape(-1, k, 3)
        if kps_t.shape[0] != boxes_t.shape[0]:
            raise AdapterError(f"{self.path}: {len(boxes_t)} boxes but {len(kps_t)} keypoint sets")
        b, kp, keep = postprocess(boxes_t, kps_t, x.shape[1:], original)
        scores_t = torch.from_numpy(np.asarray(scores, np.float32)).reshape(-1)[keep]
        labels = torch.from_numpy(np.asarray(classes).astype(np.int64)).reshape(-1)[keep] + 1
        return Prediction(b, scores_t, labels, kp).to(self.device)


def write_metadata(path: Path, cfg) -> None:
    """Record the resize and channel order in the graph (needs the ``onnx`` package)."""
    try:
        import onnx
    except ImportError:
        return
    proto = onnx.load(str(path))
    for key in INPUT_KEYS:
        entry = proto.metadata_props.add()
        entry.key, entry.value = META_PREFIX + key, str(cfg[key])
    onnx.save(proto, str(path))
