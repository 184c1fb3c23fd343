"""Shared by the state-dict formats: build the architecture, load tensors, wrap for predict."""

from __future__ import annotations

from typing import Any

from ..errors import AdapterError, first_line
from .builders import build_module
from .options import LoadOptions
from .torch_module import TorchDetectionModel


def wrap_state_dict(card, state_dict: dict[str, Any], options: LoadOptions) -> TorchDetectionModel:
    module = build_module(card)
    load_into(module, state_dict, card)
    return TorchDetectionModel(module, options, card.keypoints.num_keypoints, card.model.name)


def load_safely(path, options: LoadOptions, what: str, **kwargs: Any) -> Any:
    """``security.load_state_dict_safely`` after the run's scan; a reader's own error (torch's
    unpickler, a corrupt archive) becomes one ``AdapterError``: ``"{path}: {what}: {reason}"``.
    The scanner's refusals (``KpModelError``) pass unchanged."""
    import pickle

    from ..errors import KpModelError
    from ..security import load_state_dict_safely

    try:
        return load_state_dict_safely(path, options.scan_report, **kwargs)
    except KpModelError:
        raise
    except (pickle.UnpicklingError, RuntimeError, OSError, EOFError, ValueError) as exc:
        raise AdapterError(f"{path}: {what}: {first_line(exc)}") from None


def read_checked(path, options: LoadOptions | None = None) -> dict[str, Any]:
    """The state dict in ``path`` (safetensors or torch zip), loaded only after a clean scan.

    Nested training checkpoints (``{"model": state_dict, "epoch": ...}``) yield their state dict.
    """
    import torch

    options = options or LoadOptions()
    obj = load_safely(path, options, "could not be read as a state dict",
                      extra_globals=options.extra_globals)  # fmt: skip
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
    problems = fit_problems(state_dict, module.state_dict())
    if problems:
        raise AdapterError(
            f"{card.model.weights}: weights do not fit [model.architecture] "
            f"{card.model.architecture} with [model.kwargs] in {card.path}: " + "; ".join(problems)
        )
    module.load_state_dict(state_dict, strict=True)


def fit_problems(weights: dict[str, Any], expected: dict[str, Any]) -> list[str]:
    """Why ``weights`` would not load strictly into a module whose ``state_dict()`` is
    ``expected``: names missing, unexpected, or of another shape (empty: they fit)."""
    missing = sorted(set(expected) - set(weights))
    unexpected = sorted(set(weights) - set(expected))
    reshaped = [
        f"{k} {tuple(weights[k].shape)} in the file, {tuple(v.shape)} in the model"
        for k, v in expected.items()
        if k in weights and tuple(weights[k].shape) != tuple(v.shape)
    ]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing ({_some(missing)})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected ({_some(unexpected)})")
    if reshaped:
        problems.append(f"{len(reshaped)} with other shapes ({'; '.join(reshaped[:3])})")
    return problems


def _some(keys: list[str], n: int = 4) -> str:
    return ", ".join(keys[:n]) + (", ..." if len(keys) > n else "")
