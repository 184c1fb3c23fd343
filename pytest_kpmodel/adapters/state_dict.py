"""Shared by the state-dict formats: build the architecture, load tensors, wrap for predict."""

from __future__ import annotations

from typing import Any

from ..errors import AdapterError
from .builders import build_module
from .options import LoadOptions
from .torch_module import TorchDetectionModel


def wrap_state_dict(card, state_dict: dict[str, Any], options: LoadOptions) -> TorchDetectionModel:
    module = build_module(card)
    load_into(module, state_dict, card)
    return TorchDetectionModel(module, options, card.keypoints.num_keypoints, card.model.name)


def load_into(module, state_dict: dict[str, Any], card) -> None:
    """``load_state_dict(strict=True)``, reporting mismatches by name instead of torch's dump."""
    expected = module.state_dict()
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    reshaped = [
        f"{k} {tuple(state_dict[k].shape)} vs {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state_dict and tuple(state_dict[k].shape) != tuple(v.shape)
    ]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing (e.g. {', '.join(missing[:3])})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected (e.g. {', '.join(unexpected[:3])})")
    if reshaped:
        problems.append(f"{len(reshaped)} with other shapes (e.g. {'; '.join(reshaped[:3])})")
    if problems:
        raise AdapterError(
            f"{card.model.weights}: weights do not fit [model.architecture] "
            f"{card.model.architecture} with [model.kwargs] in {card.path}: " + "; ".join(problems)
        )
    module.load_state_dict(state_dict, strict=True)
