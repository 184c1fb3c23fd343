"""``format = "python"``: ``architecture = "package.module:factory"`` returns the model.

The module is imported from the card's folder (or the environment). The factory gets the card's
``[model.kwargs]``, plus ``weights=<path>`` when the card names a weights file and the factory
takes a ``weights`` parameter. It returns an ``nn.Module`` with torchvision's detection contract or
an object that already has ``predict``. Importing and calling it runs the vendor's code, so the
spec must allow code.
"""

from __future__ import annotations

import inspect

from ..errors import AdapterError
from .builders import call_factory, resolve_factory
from .keypoint_count import check_predicted
from .options import LoadOptions
from .torch_module import TorchDetectionModel


class PredictorModel:
    """An object with its own ``predict``, given the attributes the plugin relies on."""

    def __init__(self, obj, options: LoadOptions, num_keypoints: int, name: str) -> None:
        import torch

        self.inner = obj
        self.device = torch.device(options.device)
        self.precision = options.precision
        self.num_keypoints = num_keypoints
        self.name = name
        self.module = getattr(obj, "module", None)

    def predict(self, images):
        preds = self.inner.predict(images)
        for p in preds:  # its own predict: the count is only known from what it returns
            check_predicted(self.name, self.num_keypoints, int(p.keypoints.shape[1]))
        return preds


def load(card, options: LoadOptions):
    if not options.allow_code:
        raise AdapterError(
            f"{card.path}: [model.format] 'python' runs the vendor's code; "
            "pass --kp-allow-code to permit it"
        )
    factory = resolve_factory(card.model.architecture, card.path, search_card_folder=True)
    kwargs = dict(card.model.kwargs)
    if card.model.weights is not None:
        try:
            params = inspect.signature(factory).parameters
        except ValueError:
            params = {}
        if "weights" in params:
            kwargs["weights"] = str(card.model.weights)
    obj = call_factory(factory, kwargs, card)
    k = card.keypoints.num_keypoints
    if hasattr(obj, "predict"):
        return PredictorModel(obj, options, k, card.model.name)
    if callable(obj):
        return TorchDetectionModel(obj, options, k, card.model.name)
    raise AdapterError(
        f"{card.path}: [model.architecture] {card.model.architecture} returned "
        f"{type(obj).__name__}, neither an nn.Module nor an object with predict()"
    )
