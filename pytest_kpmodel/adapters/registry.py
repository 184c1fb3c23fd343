"""Format name -> loader. Built-in formats are modules in this package; third parties add theirs
through the ``pytest_kpmodel.adapters`` entry-point group (name = format, value =
``package.module:load`` with the signature of ``Loader``), so a new format is a new file, never an
edit here.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import TYPE_CHECKING

from ..errors import AdapterError

if TYPE_CHECKING:
    from ..card import ModelCard
    from .base import KeypointModel
    from .options import LoadOptions

    Loader = Callable[[ModelCard, LoadOptions], KeypointModel]

ENTRY_POINT_GROUP = "pytest_kpmodel.adapters"

BUILTIN: dict[str, str] = {
    "safetensors": "pytest_kpmodel.adapters.safetensors_format:load",
    "pytorch": "pytest_kpmodel.adapters.pytorch_format:load",
    "torchscript": "pytest_kpmodel.adapters.torchscript_format:load",
    "python": "pytest_kpmodel.adapters.python_format:load",
    "exported": "pytest_kpmodel.adapters.exported_format:load",
    "onnx": "pytest_kpmodel.adapters.onnx_format:load",
    "ultralytics": "pytest_kpmodel.adapters.ultralytics.adapter:load",
    "detectron2": "pytest_kpmodel.adapters.detectron2.adapter:load",
}


def _targets() -> dict[str, str]:
    targets = dict(BUILTIN)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        targets[ep.name] = ep.value
    return targets


def _resolve(target: str) -> Loader | None:
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name:
            return None  # a built-in format whose adapter has not landed in this build
        raise
    return getattr(module, attr)


def available_formats() -> list[str]:
    return sorted(name for name, target in _targets().items() if _resolve(target) is not None)


def load_model(card: ModelCard, options: LoadOptions) -> KeypointModel:
    """Load ``card``'s model with the adapter for its format."""
    target = _targets().get(card.model.format)
    loader = _resolve(target) if target else None
    if loader is None:
        raise AdapterError(
            f"{card.path}: [model.format] no adapter for format {card.model.format!r} here; "
            f"available: {', '.join(available_formats())}"
        )
    from .keypoint_count import check_kwargs, check_module

    check_kwargs(card)  # [model.kwargs] num_keypoints against [keypoints], before building
    model = loader(card, options)
    module = getattr(model, "module", None)
    if module is not None:  # a torchvision-style keypoint predictor's count, from its weights
        check_module(card, module)
    return model
