"""``architecture = "package.module:factory"`` -> the factory, called with the card's kwargs.

``torchvision:NAME`` resolves to ``torchvision.models.detection.NAME`` and is always built with
``weights=None, weights_backbone=None``: the weights come from the card, never from a hub.
"""

from __future__ import annotations

import importlib
import inspect
import sys
from collections.abc import Callable
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from ..errors import AdapterError


def resolve_factory(
    architecture: str, card_path: Path, search_card_folder: bool = False
) -> Callable:
    module_name, _, attr = architecture.partition(":")
    where = f"{card_path}: [model.architecture]"
    if module_name == "torchvision":
        module_name = "torchvision.models.detection"
    with _card_folder_on_path(card_path.parent if search_card_folder else None):
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise AdapterError(f"{where} cannot import {module_name!r}: {exc}") from None
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise AdapterError(f"{where} {module_name!r} has no callable {attr!r}")
    return factory


def build_module(card, **extra: Any):
    """Build the card's architecture with its kwargs; torchvision builders never download."""
    factory = resolve_factory(card.model.architecture, card.path, search_card_folder=False)
    kwargs = dict(card.model.kwargs)
    if card.model.architecture.startswith("torchvision:"):
        kwargs.setdefault("weights", None)
        kwargs.setdefault("weights_backbone", None)
        if kwargs["weights"] is not None or kwargs["weights_backbone"] is not None:
            raise AdapterError(
                f"{card.path}: [model.kwargs] weights/weights_backbone must be unset: "
                "pretrained weights would be downloaded; the card's weights file is used instead"
            )
    kwargs.update(extra)
    return call_factory(factory, kwargs, card)


def call_factory(factory: Callable, kwargs: dict[str, Any], card) -> Any:
    try:
        inspect.signature(factory).bind(**kwargs)
    except TypeError as exc:
        raise AdapterError(
            f"{card.path}: [model.kwargs] do not fit {card.model.architecture}: {exc}"
        ) from None
    except ValueError:
        pass  # builtins without a signature: let the call decide
    try:
        return factory(**kwargs)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise AdapterError(
            f"{card.path}: [model.architecture] {card.model.architecture} failed to build with "
            f"[model.kwargs] {kwargs}: {exc}"
        ) from None


@contextmanager
def _card_folder_on_path(folder: Path | None):
    if folder is None:
        yield
        return
    sys.path.insert(0, str(folder))
    try:
        yield
    finally:
        with suppress(ValueError):
            sys.path.remove(str(folder))
