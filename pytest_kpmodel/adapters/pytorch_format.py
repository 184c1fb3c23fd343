"""``format = "pytorch"``: a ``torch.save`` zip state dict, loaded with ``weights_only=True``
only after the static scan passed. Training checkpoints that nest the state dict under
``model`` or ``state_dict`` are accepted. There is deliberately no fallback to
``weights_only=False``.
"""

from __future__ import annotations

from .options import LoadOptions
from .state_dict import read_checked, wrap_state_dict


def load(card, options: LoadOptions):
    return wrap_state_dict(card, read_checked(card.model.weights, options), options)
