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


def read_checked(path, options: LoadOptions | None = None) -> dict[str, Any]:
    """The state dict in ``path`` (safetensors or torch zip), loaded only after a clean scan.

    Nested training checkpoints (``{"model": state_dict, "epoch": ...}``) yield their state dict.
    """
    import pickle

    import torch

    from ..errors import KpModelError
    from ..security import load_state_dict_safely

    options = options or LoadOptions()
    try:
        obj = load_state_dict_safely(path, options.scan_report, extra_globals=options.extra_globals)
    except KpModelError:
        raise
    except (pickle.UnpicklingError, RuntimeError, OSError, EOFError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise AdapterError(f"{path}: could not be read as a state dict: {first}") from None
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
