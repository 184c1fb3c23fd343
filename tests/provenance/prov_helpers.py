"""Tiny models with chosen weights and kwargs, written as safetensors + card, for these tests."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from kp_factories import TINY_KWARGS

DATA = Path(__file__).parent / "data"
SOURCE = "https://models.example.org/tiny/0.1"


def write_model(folder: Path, state_dict: dict, *, card_extra: str = "", **overrides) -> Path:
    """Save ``state_dict`` as safetensors beside a card built for TINY_KWARGS + overrides."""
    from safetensors.torch import save_file

    from pytest_kpmodel.provenance.digests import sha256_file

    folder.mkdir(parents=True, exist_ok=True)
    weights = folder / "model.safetensors"
    save_file({k: v.contiguous() for k, v in state_dict.items()}, str(weights))
    kwargs = "\n".join(f"{k} = {json.dumps(v)}" for k, v in {**TINY_KWARGS, **overrides}.items())
    text = (
        'schema = 1\n\n[model]\nname = "tiny"\nversion = "0.1"\nformat = "safetensors"\n'
        f'weights = "model.safetensors"\nsha256 = "{sha256_file(weights)}"\n'
        'architecture = "pytest_kpmodel.zoo:keypointrcnn_compact"\n'
        f"[model.kwargs]\n{kwargs}\n{card_extra}"
    )
    path = folder / "kpmodel.toml"
    path.write_text(text)
    return path


def copy_model(card: Path, dest: Path) -> Path:
    """A copy of a card's folder (for tampering); returns the copied card path."""
    shutil.copytree(card.parent, dest, symlinks=True)
    return dest / card.name


def repin(card: Path) -> None:
    """Rewrite the card's [model.sha256] to the weights' current digest (what a forger does)."""
    import re

    from pytest_kpmodel.provenance.digests import sha256_file

    text = card.read_text()
    digest = sha256_file(card.parent / "model.safetensors")
    card.write_text(re.sub(r'sha256 = "[0-9a-f]{64}"', f'sha256 = "{digest}"', text))
