"""``format = "pytorch"``: a ``torch.save`` zip state dict, loaded with ``weights_only=True``.

Training checkpoints that nest the state dict under ``model`` or ``state_dict`` are accepted.
There is deliberately no fallback to ``weights_only=False``.
"""

from __future__ import annotations

from ..errors import AdapterError
from .options import LoadOptions
from .state_dict import wrap_state_dict


def read_state_dict(path) -> dict:
    import pickle

    import torch

    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, OSError, EOFError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise AdapterError(f"{path}: torch.load(weights_only=True) refused it: {first}") from None
    if isinstance(obj, dict):
        for key in ("model", "state_dict", "model_state_dict"):
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise AdapterError(
            f"{path}: expected a state dict (names -> tensors), got {type(obj).__name__}"
        )
    return obj


def load(card, options: LoadOptions):
    return wrap_state_dict(card, read_state_dict(card.model.weights), options)
