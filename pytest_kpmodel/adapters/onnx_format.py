"""``format = "onnx"``: an ONNX detection model run by ONNX Runtime.

Convention (what ``torch.onnx.export`` of a torchvision detector produces, and what
``pytest_kpmodel.bench.export.export_onnx`` writes):

- input: the model's first input, one float32 image in [0, 1] at its own size, ``[3, H, W]``
  (torchvision's export, named ``images``) or ``[1, 3, H, W]``; one image per call — the
  adapter loops over a batch;
- outputs: by name when they are named ``boxes`` (xyxy, input pixels) ``scores`` ``labels``
  ``keypoints`` ([N, K, 3] or [N, K, 2]) and optionally ``keypoints_scores`` ([N, K]); otherwise
  by position in torchvision's order ``boxes, labels, scores, keypoints[, keypoints_scores]``. A
  leading batch axis of size 1 on every output is dropped.

Device: ``CPUExecutionProvider``; ``CUDAExecutionProvider`` when the device is CUDA (an error
when this onnxruntime build lacks it: install onnxruntime-gpu or use --kp-device=cpu). The
session uses ``torch.get_num_threads()`` intra-op threads, so CPU timings compare with torch's.
Precision: the model runs in the precision it was exported in; only ``fp32`` is accepted. (What
the three output layouts share is in :mod:`.onnx_runtime`.)

Safety: ONNX is a graph of standard operators read from protobuf; loading runs no code from the
file (custom operator domains fail to load unless a library was registered on purpose). Tensors
stored as external data must lie inside the card's folder (checked with ``onnx`` before the
session opens, when the ``onnx`` package is installed).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import AdapterError
from .base import Prediction
from .keypoint_count import check_onnx_outputs, check_predicted
from .onnx_runtime import check_external_data, open_session, require_fp32
from .options import LoadOptions

TORCHVISION_ORDER = ("boxes", "labels", "scores", "keypoints", "keypoints_scores")


def load(card, options: LoadOptions):
    layout = getattr(card.model, "output_layout", "torchvision")
    if layout == "yolo-pose":  # Ultralytics' raw pose head: decoded by the ultralytics family
        from .ultralytics.onnx_layout import load_yolo_pose

        return load_yolo_pose(card, options)
    if layout == "detectron2":  # detectron2's tracing-export interface: the detectron2 family
        from .detectron2.onnx_layout import load_detectron2_onnx

        return load_detectron2_onnx(card, options)
    require_fp32(card, options)
    path = Path(card.model.weights)
    check_external_data(path, card.folder)
    model = OnnxDetectionModel(path, options.device, card.keypoints.num_keypoints, card.model.name)
    check_onnx_outputs(card, model.session.get_outputs())
    return model


class OnnxDetectionModel:
    """An ONNX Runtime session behind ``KeypointModel.predict`` (one image per ``run``)."""

    precision = "fp32"

    def __init__(self, path: str | Path, device: Any, num_keypoints: int, name: str = "") -> None:
        import torch

        self.path = Path(path)
        self.device = torch.device(device)
        self.num_keypoints = num_keypoints
        self.name = name
        self.session = open_session(path, self.device)
        inputs = self.session.get_inputs()
        if not inputs:
            raise AdapterError(f"{path}: the ONNX model has no input")
        self.input_name = inputs[0].name
        shape = inputs[0].shape
        self.input_rank = len(shape) if shape is not None else 3
        if self.input_rank not in (3, 4):
            raise AdapterError(
                f"{path}: input {self.input_name!r} has shape {shape}; expected [3, H, W] or "
                "[1, 3, H, W]"
            )
        self.output_names = [o.name for o in self.session.get_outputs()]
        self._by_name = {"boxes", "scores", "labels", "keypoints"} <= set(self.output_names)
        if not self._by_name and len(self.output_names) not in (4, 5):
            raise AdapterError(
                f"{path}: outputs {self.output_names} are neither named boxes/scores/labels/"
                f"keypoints[/keypoints_scores] nor 4-5 outputs in torchvision's order"
            )

    def predict(self, images: list) -> list[Prediction]:
        return [self._predict_one(im) for im in images]

    def _predict_one(self, image) -> Prediction:
        import numpy as np
        import torch

        x = image.detach().float().cpu().numpy()
        if self.input_rank == 4:
            x = x[None]
        outputs = self.session.run(None, {self.input_name: np.ascontiguousarray(x)})
        if self._by_name:
            named = dict(zip(self.output_names, outputs, strict=True))
        else:
            named = dict(zip(TORCHVISION_ORDER, outputs, strict=False))
        named = {k: _drop_batch(v, k) for k, v in named.items()}
        boxes = torch.from_numpy(np.asarray(named["boxes"], dtype=np.float32)).reshape(-1, 4)
        n = boxes.shape[0]
        if n == 0:
            return Prediction.empty(self.num_keypoints, self.device)
        scores = torch.from_numpy(np.asarray(named["scores"], dtype=np.float32)).reshape(n)
        labels = torch.from_numpy(np.asarray(named["labels"]).astype(np.int64)).reshape(n)
        kps = torch.from_numpy(np.asarray(named["keypoints"], dtype=np.float32))
        if kps.ndim == 3:
            check_predicted(self.name, self.num_keypoints, int(kps.shape[1]))
        else:
            kps = kps.reshape(n, self.num_keypoints, -1)
        if kps.shape[-1] == 2:
            kps = torch.cat([kps, torch.ones_like(kps[..., :1])], dim=-1)
        kps = kps[..., :3].clone()
        kp_scores = named.get("keypoints_scores")
        if kp_scores is not None:
            kps[..., 2] = torch.from_numpy(np.asarray(kp_scores, dtype=np.float32)).reshape(
                n, self.num_keypoints
            )
        return Prediction(boxes, scores, labels, kps).to(self.device)


def _drop_batch(v, key: str):
    """Drop a leading batch axis of 1 (``[1, N, 4]`` boxes etc.)."""
    expected_rank = {"boxes": 2, "scores": 1, "labels": 1, "keypoints": 3, "keypoints_scores": 2}
    rank = expected_rank.get(key)
    if rank is not None and v.ndim == rank + 1 and v.shape[0] == 1:
        return v[0]
    return v
