"""``format = "onnx"`` with ``output_layout = "yolo-pose"``: an Ultralytics YOLO-pose export.

``model.export(format="onnx")`` writes one input ``images`` ``[1, 3, H, W]`` (fixed at the
export's ``imgsz`` unless ``dynamic=True``) and one output ``[1, 4 + nc + K*D, N]``: the pose
head's decoded anchors (``head.py``), before NMS. This layout letterboxes, runs the session and
decodes with the eager adapter's code (``preprocess``, ``postprocess``), so an export and its
``.pt`` go through the same steps.

Shapes come from the export's metadata (``kpt_shape``, ``stride``, ``imgsz``, which Ultralytics
writes as Python literals; read with ``ast.literal_eval``), else from the card: ``K`` = the
card's keypoint count, ``D`` = 3, ``nc`` = what is left of the output's channels.
``[model.kwargs]``: ``imgsz``, ``letterbox`` (default ``"square"`` for a fixed input - the
only one that fits it - and ``"val"`` for a dynamic one), ``conf``, ``iou``, ``max_det``, with
the eager adapter's defaults and checks.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

from ...errors import AdapterError
from ..base import Prediction
from ..onnx_runtime import check_external_data, open_session, require_fp32
from ..options import LoadOptions


def load_yolo_pose(card, options: LoadOptions):
    require_fp32(card, options)
    return YoloPoseOnnxModel(Path(card.model.weights), options.device, card)


def _literal(meta: dict[str, str], key: str) -> Any:
    raw = meta.get(key)
    if raw is None:
        return None
    try:
        return ast.literal_eval(raw)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None


class YoloPoseOnnxModel:
    """An Ultralytics pose export behind ``KeypointModel.predict`` (one image per run)."""

    precision = "fp32"

    def __init__(
        self,
        path: Path,
        device: Any,
        card,
        config: dict[str, Any] | None = None,
        shapes: tuple[tuple[int, int], int, int] | None = None,
    ):
        """``config`` and ``shapes`` (``(kpt_shape, stride, nc)``): given by the eager model when
        it exports itself; read from the export and the card otherwise."""
        import torch

        from .kwargs import settings

        check_external_data(path, card.folder)
        self.path = path
        self.device = torch.device(device)
        self.name = card.model.name
        self.session = open_session(path, self.device)
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        if len(inputs) != 1 or len(inputs[0].shape or ()) != 4:
            raise AdapterError(
                f"{path}: output_layout 'yolo-pose' expects one [1, 3, H, W] input, got "
                + ", ".join(f"{i.name} {i.shape}" for i in inputs)
            )
        self.input_name = inputs[0].name
        self.input_half = inputs[0].type == "tensor(float16)"
        h, w = inputs[0].shape[2:]
        self.fixed_hw = (h, w) if isinstance(h, int) and isinstance(w, int) else None
        meta = self.session.get_modelmeta().custom_metadata_map
        k_card = card.keypoints.num_keypoints
        kpt_shape = shapes[0] if shapes is not None else _literal(meta, "kpt_shape")
        if not (
            isinstance(kpt_shape, list | tuple)
            and len(kpt_shape) == 2
            and all(type(v) is int for v in kpt_shape)
            and kpt_shape[1] in (2, 3)
        ):
            kpt_shape = (k_card, 3)
        self.kpt_shape = (int(kpt_shape[0]), int(kpt_shape[1]))
        if self.kpt_shape[0] != k_card:
            raise AdapterError(
                f"{path}: the export's kpt_shape {list(self.kpt_shape)} has {self.kpt_shape[0]} "
                f"keypoints but the card {card.path} declares {card.keypoints.label} in "
                "[keypoints]"
            )
        channels = (outputs[0].shape or [None, None])[1] if outputs else None
        nk = self.kpt_shape[0] * self.kpt_shape[1]
        if shapes is not None and not isinstance(channels, int):
            channels = 4 + shapes[2] + nk  # the exporter left the channel axis symbolic
        if not isinstance(channels, int) or channels - 4 - nk < 1:
            raise AdapterError(
                f"{path}: output_layout 'yolo-pose' expects an output [1, 4 + nc + {nk}, N] "
                f"(kpt_shape {list(self.kpt_shape)}), got "
                + (f"{outputs[0].name} {outputs[0].shape}" if outputs else "no output")
            )
        self.nc = channels - 4 - nk
        self.num_keypoints = self.kpt_shape[0]
        stride = shapes[1] if shapes is not None else _literal(meta, "stride")
        self.stride = stride if type(stride) is int and stride > 0 else 32
        if config is None:
            config = self._settings(card, meta, settings)
        self.config = config

    def _settings(self, card, meta: dict[str, str], settings) -> dict[str, Any]:
        imgsz = _literal(meta, "imgsz")
        if isinstance(imgsz, list | tuple) and imgsz and all(type(v) is int for v in imgsz):
            imgsz = max(imgsz)
        elif self.fixed_hw is not None:
            imgsz = max(self.fixed_hw)
        checkpoint = {"train_args": {"imgsz": imgsz}} if type(imgsz) is int else None
        kwargs = card.model.kwargs
        if "letterbox" not in kwargs:
            kwargs = {**kwargs, "letterbox": "square" if self.fixed_hw else "val"}
            card = _with_kwargs(card, kwargs)
        config = settings(card, checkpoint, self.stride)
        if self.fixed_hw is not None:
            want = (config["imgsz"], config["imgsz"])
            if config["letterbox"] != "square" or tuple(self.fixed_hw) != want:
                raise AdapterError(
                    f"{self.path}: the export's input is fixed at {list(self.fixed_hw)}; it runs "
                    f"only with letterbox = 'square' and imgsz = {self.fixed_hw[0]} (square "
                    "exports), or export with dynamic=True"
                )
        return config

    def predict(self, images: list) -> list[Prediction]:
        import numpy as np
        import torch

        from . import preprocess
        from .postprocess import decode_head_output

        out = []
        for image in images:
            box = preprocess.plan(
                tuple(image.shape[1:]), self.config["imgsz"], self.stride, self.config["letterbox"]
            )
            x = preprocess.apply(image.detach().cpu(), box).numpy()
            x = x.astype(np.float16) if self.input_half else x
            (raw,) = self.session.run(None, {self.input_name: np.ascontiguousarray(x)})[:1]
            y = torch.from_numpy(np.asarray(raw, dtype=np.float32))[0]
            pred = decode_head_output(y, box, self.nc, self.kpt_shape, self.config)
            out.append(pred.to(self.device))
        return out


def export_onnx(module, path: Path, example):
    """Write the network (letterboxed ``[1, 3, H, W]`` -> head output ``[1, 4 + nc + K*D, N]``,
    Ultralytics' export layout) as ONNX with dynamic H and W: the TorchScript-based exporter,
    else the dynamo one. ``ExportUnavailable`` with both reasons when neither works."""
    import copy

    import torch

    from ..onnx_export import export_graph

    module = copy.deepcopy(module).cpu().eval()
    example = example.detach().float().cpu()
    named = {"input_names": ["images"], "output_names": ["output0"]}
    h, w = torch.export.Dim("height"), torch.export.Dim("width")
    return export_graph(module, (example,), path, [
        ("legacy", {**named, "dynamic_axes": {"images": {2: "height", 3: "width"},
                                              "output0": {2: "n"}}}),
        ("dynamo", {**named, "dynamic_shapes": ({2: h, 3: w},)}),
    ])  # fmt: skip


def _with_kwargs(card, kwargs: dict[str, Any]):
    from dataclasses import replace

    return replace(card, model=replace(card.model, kwargs=kwargs))
