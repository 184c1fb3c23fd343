"""``format = "safetensors"``: tensors only, no code; the preferred format."""

from __future__ import annotations

from .options import LoadOptions
from .state_dict import read_checked, wrap_state_dict


def load(card, options: LoadOptions):
    return wrap_state_dict(card, read_checked(card.model.weights, options), options)
