"""An ``nn.Module`` with torchvision's detection contract, behind ``KeypointModel.predict``.

Input: a list of CHW float images in [0, 1] at their original size. Output: a list of dicts with
``boxes`` (xyxy, input pixels), ``scores``, ``labels``, ``keypoints`` [N, K, 3] and
``keypoints_scores`` [N, K]. torchvision's ``keypoints[..., 2]`` is a visibility flag, not a
score, so the per-keypoint score comes from ``keypoints_scores`` when the model gives it.
"""

from __future__ import annotations

from typing import Any

from ..errors import AdapterError
from .base import Prediction
from .keypoint_count import check_predicted
from .options import LoadOptions


def autocast_dtype(precision: str):
    import torch

    return {"fp32": None, "fp16": torch.float16, "bf16": torch.bfloat16}[precision]


class TorchDetectionModel:
    """Wraps a detection ``nn.Module`` (eager or TorchScript) into the ``KeypointModel`` API."""

    def __init__(
        self, module: Any, options: LoadOptions, num_keypoints: int, name: str = ""
    ) -> None:
        import torch

        self.device = torch.device(options.device)
        self.precision = options.precision
        self.num_keypoints = num_keypoints
        self.name = name
        self.module = module.to(self.device).eval() if hasattr(module, "to") else module
        self._autocast = autocast_dtype(options.precision)
        if options.precision == "fp16" and self.device.type != "cuda":
            raise AdapterError(
                f"precision fp16 needs a CUDA device (got {self.device}); use bf16 on the CPU"
            )

    def predict(self, images: list) -> list[Prediction]:
        import torch

        images = [im.to(self.device, non_blocking=True) for im in images]
        with torch.inference_mode():
            if self._autocast is not None:
                with torch.autocast(self.device.type, dtype=self._autocast):
                    outputs = self.module(images)
            else:
                outputs = self.module(images)
        if isinstance(outputs, tuple) and len(outputs) == 2:  # TorchScript returns (losses, dets)
            outputs = outputs[1]
        preds = [to_prediction(o, self.num_keypoints) for o in outputs]
        for p in preds:  # a count the card's [keypoints] does not describe: refused, not scored
            check_predicted(self.name, self.num_keypoints, int(p.keypoints.shape[1]))
        return preds


def to_prediction(output: dict[str, Any], num_keypoints: int) -> Prediction:
    import torch

    boxes = output["boxes"].float()
    n = boxes.shape[0]
    kps = output.get("keypoints")
    if kps is None:
        kps = torch.zeros((n, num_keypoints, 3), device=boxes.device)
    kps = kps.float().clone()
    kp_scores = output.get("keypoints_scores")
    if kp_scores is not None:
        kps[..., 2] = kp_scores.float()
    return Prediction(
        boxes=boxes,
        scores=output["scores"].float(),
        labels=output["labels"].long(),
        keypoints=kps,
    )
