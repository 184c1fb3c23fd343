"""``format = "safetensors"``: tensors only, no code; the preferred format."""

from __future__ import annotations

from ..errors import AdapterError
from .options import LoadOptions
from .state_dict import wrap_state_dict


def read_state_dict(path) -> dict:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as exc:
        raise AdapterError(f"{path}: not a readable safetensors file: {exc}") from None


def load(card, options: LoadOptions):
    return wrap_state_dict(card, read_state_dict(card.model.weights), options)
