"""Fixtures of the ``ultralytics`` format tests: cards over the committed checkpoints, the
goldens Ultralytics wrote, and checkpoints crafted from them (no ultralytics needed).

``data/`` was written by ``benchmarks/ultralytics_goldens.py`` with ultralytics 8.4: tiny
YOLOv8 / YOLO11 pose checkpoints saved by Ultralytics itself, their ONNX exports, three small
images and Ultralytics' predictions on them (``predict``, ``val`` and the ONNX export).

``save_as_ultralytics`` writes a module tree of the plugin's stand-ins back under the
Ultralytics class names (a pickler whose ``save_global`` writes the mapped name), so a test can
make a checkpoint that differs from a real one in exactly one place.
"""

from __future__ import annotations

import json
import pickle
import shutil
import types
from pathlib import Path
from typing import Any

DATA = Path(__file__).parent / "data"
MODELS = ("yolov8-pose-tiny", "yolo11-pose-tiny")
IMAGES = ("landscape_96x72.png", "portrait_64x100.png", "wide_150x60.png")
NMS = {"conf": 0.001, "iou": 0.7, "max_det": 300}


def golden(name: str) -> dict[str, Any]:
    return json.loads((DATA / f"{name}.json").read_text())


def card(
    folder: Path,
    weights: Path,
    *,
    allowlist: bool = True,
    kwargs: dict[str, Any] | None = None,
    extra: str = "",
    fmt: str = "ultralytics",
    model_extra: str = "",
) -> Path:
    """A card beside a copy of ``weights``; returns the card path."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / weights.name
    if not target.exists():
        shutil.copyfile(weights, target)
    lines = ["schema = 1", "[model]", 'name = "tiny-yolo"', f'format = "{fmt}"']
    lines.append(f'weights = "{weights.name}"')
    if allowlist and fmt == "ultralytics":
        lines.append('allowlist = "ultralytics"')
    if model_extra:
        lines.append(model_extra)
    lines.append("[model.kwargs]")
    lines += [f"{k} = {json.dumps(v)}" for k, v in (kwargs or {}).items()]
    path = folder / "kpmodel.toml"
    path.write_text("\n".join(lines) + "\n" + extra)
    return path


def load_checkpoint(path: Path) -> dict[str, Any]:
    """A committed checkpoint rebuilt into the stand-ins (the adapter's own loader)."""
    from pytest_kpmodel.adapters.options import LoadOptions
    from pytest_kpmodel.adapters.ultralytics.adapter import read_checkpoint

    return read_checkpoint(path, LoadOptions(), ("ultralytics",))


def save_as_ultralytics(obj: Any, path: Path, renames: dict[type, str] | None = None) -> None:
    """``torch.save(obj)`` with every stand-in class written under its Ultralytics name (and
    ``renames``: more classes -> "module.Name")."""
    import torch

    from pytest_kpmodel.adapters.ultralytics.standins import STAND_INS

    names = {cls: name for name, cls in STAND_INS.items() if not name.startswith("torch.")}
    names.update(renames or {})

    class Pickler(pickle._Pickler):  # the pure-Python pickler: save_global can be replaced
        def save_global(self, obj: Any, name: str | None = None) -> None:
            full = names.get(obj) if isinstance(obj, type) else None
            if full is None:
                return super().save_global(obj, name)
            module, _, qual = full.rpartition(".")
            self.write(pickle.GLOBAL + f"{module}\n{qual}\n".encode())
            self.memoize(obj)

    module = types.ModuleType("ul_pickle")
    module.Pickler = Pickler  # type: ignore[attr-defined]
    torch.save(obj, path, pickle_module=module)
