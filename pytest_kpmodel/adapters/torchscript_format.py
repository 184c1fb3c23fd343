"""``format = "torchscript"``: a scripted detection model. It carries code, so the spec must
allow code (``--kp-allow-code`` or ``kp_security(code=True)``)."""

from __future__ import annotations

from ..errors import AdapterError, first_line
from .options import LoadOptions
from .torch_module import TorchDetectionModel


def load(card, options: LoadOptions):
    import torch

    if not options.allow_code:
        raise AdapterError(
            f"{card.path}: [model.format] 'torchscript' runs code shipped with the model; "
            "pass --kp-allow-code to permit it"
        )
    try:
        module = torch.jit.load(str(card.model.weights), map_location=options.device)
    except (RuntimeError, ValueError, OSError) as exc:
        raise AdapterError(
            f"{card.model.weights}: not a loadable TorchScript file: {first_line(exc)}"
        ) from None
    return TorchDetectionModel(module, options, card.keypoints.num_keypoints, card.model.name)
