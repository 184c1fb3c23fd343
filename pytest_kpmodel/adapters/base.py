"""The one interface every model format loads into, and the registry of format adapters.

Metrics, benchmarks and robustness only ever see ``KeypointModel.predict``. A format is added by
a new module that registers a loader (see ``registry.py``), never by editing this file.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    import torch


@dataclass
class Prediction:
    """Detections for one image: xyxy boxes in pixels of the input image, keypoints (x, y, score)."""

    boxes: torch.Tensor  # [N, 4] float
    scores: torch.Tensor  # [N] float
    labels: torch.Tensor  # [N] int64
    keypoints: torch.Tensor  # [N, K, 3] float: x, y, score

    def __len__(self) -> int:
        return int(self.boxes.shape[0])

    def to(self, device: Any) -> Prediction:
        return Prediction(
            self.boxes.to(device),
            self.scores.to(device),
            self.labels.to(device),
            self.keypoints.to(device),
        )

    def cpu(self) -> Prediction:
        return self.to("cpu")

    @classmethod
    def empty(cls, num_keypoints: int, device: Any = "cpu") -> Prediction:
        import torch

        return cls(
            torch.zeros((0, 4), device=device),
            torch.zeros((0,), device=device),
            torch.zeros((0,), dtype=torch.int64, device=device),
            torch.zeros((0, num_keypoints, 3), device=device),
        )


@runtime_checkable
class KeypointModel(Protocol):
    """What a loaded model looks like to the rest of the plugin."""

    device: torch.device
    num_keypoints: int

    def predict(self, images: list[torch.Tensor]) -> list[Prediction]:
        """CHW float images in [0, 1] at their original size -> one Prediction per image."""
        ...
