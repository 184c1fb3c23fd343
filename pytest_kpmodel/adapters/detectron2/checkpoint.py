"""detectron2 checkpoints -> the model's state dict, as ``DetectionCheckpointer.load`` reads them.

Two layouts, told apart by content (the static scan's ``kind``), not by the file name:

- a plain pickle (``.pkl``, the model zoo's): ``{"model": {name: ndarray}, "__author__": ...,
  "matching_heuristics": ...}``; without ``model`` + ``__author__`` it is a Caffe2 / Detectron1
  file: ``blobs`` (when present) holds the arrays, ``*_momentum`` entries are dropped and the
  names are converted with ``matching_heuristics`` (see ``c2_names``). Loaded only after a clean
  scan, by the restricted numpy unpickler (``security.numpy_pickle``);
- a torch zip (``.pth``, what ``Checkpointer.save`` writes): ``{"model": state_dict,
  "iteration": ..., "optimizer": ...}`` or a bare state dict, loaded with
  ``torch.load(weights_only=True)`` through ``security.load_state_dict_safely``.

Then, like detectron2: numpy arrays become tensors (anything else is an error naming the key),
``matching_heuristics`` matches names by dotted suffix, a ``module.`` prefix on every key is
stripped, ``running_mean``/``running_var`` absent from a frozen batch norm whose checkpoint has
no version metadata (every ``.pkl``; Caffe2 models keep only the folded scale and bias) start
at 0 and 1, and old checkpoints' ``anchor_generator.cell_anchors.*`` and ``pixel_mean`` /
``pixel_std`` (non-persistent buffers detectron2 recomputes from the config) and the
``num_batches_tracked`` counters of batch norms frozen with ``convert_frozen_batchnorm`` are
ignored.
Unlike detectron2, which loads with ``strict=False`` and logs, any other missing, unexpected or
mis-shaped tensor is an error naming them: an acceptance test must not run a half-loaded model.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ...errors import AdapterError, KpModelError, first_line
from ..state_dict import fit_problems
from .c2_names import align, convert_c2

# recomputed by detectron2 (cell anchors, pixel mean/std), or a BatchNorm counter that
# detectron2's convert_frozen_batchnorm keeps but FrozenBatchNorm2d never reads
IGNORED = re.compile(
    r"(^|\.)(anchor_generator\.cell_anchors\.\d+|pixel_mean|pixel_std|norm\.num_batches_tracked)$"
)
_BN_STATS = ("running_mean", "running_var")


def read_checkpoint(path: Path, scan_report, extra_globals=()) -> dict[str, Any]:
    """The checkpoint as detectron2's ``_load_file`` returns it (``{"model": ..., ...}``)."""
    from ...security import scan_path

    report = scan_report if scan_report is not None else scan_path(path)
    if report.kind == "numpy-pickle":
        from ...security.numpy_pickle import load_numpy_pickle

        data = load_numpy_pickle(path, report)
        if not isinstance(data, dict):
            raise AdapterError(
                f"{path}: a detectron2 .pkl holds a dict, this pickle a {type(data).__name__}"
            )
        if "model" in data and "__author__" in data:
            return data
        if "blobs" in data:
            data = data["blobs"]
            if not isinstance(data, dict):
                raise AdapterError(f"{path}: 'blobs' is a {type(data).__name__}, not a dict")
        weights = {k: v for k, v in data.items() if not str(k).endswith("_momentum")}
        return {"model": weights, "__author__": "Caffe2", "matching_heuristics": True}
    if report.kind in ("torch-zip", "torch-legacy"):
        from ...security import load_state_dict_safely

        loaded = load_state_dict_safely(path, report, extra_globals=extra_globals)
        if not isinstance(loaded, dict):
            raise AdapterError(
                f"{path}: a detectron2 .pth holds a dict, this file a {type(loaded).__name__}"
            )
        return loaded if "model" in loaded else {"model": loaded}
    report.raise_if_unsafe()
    raise AdapterError(
        f"{path}: a {report.kind} file; format 'detectron2' reads detectron2's .pkl (a pickle of "
        "numpy arrays) or .pth (a torch.save zip) checkpoints"
    )


def state_dict_for(
    checkpoint: dict[str, Any], expected: dict[str, Any], path: Path, card_path: Path
) -> dict[str, Any]:
    """The checkpoint's ``model`` fitted to ``expected`` (the module's ``state_dict()``)."""
    import numpy as np
    import torch

    raw = checkpoint.get("model")
    if not isinstance(raw, dict):
        raise AdapterError(
            f"{path}: the checkpoint's 'model' is a {type(raw).__name__}, not a dict"
        )
    metadata = getattr(raw, "_metadata", None)
    weights: dict[str, torch.Tensor] = {}
    for k, v in raw.items():
        if isinstance(v, np.ndarray):
            v = torch.from_numpy(np.ascontiguousarray(v))
        if not isinstance(v, torch.Tensor):
            raise AdapterError(
                f"{path}: checkpoint entry {k!r} is a {type(v).__name__}, not an array or tensor"
            )
        weights[str(k)] = v
    if checkpoint.get("matching_heuristics", False):
        weights = _match(weights, list(expected), checkpoint.get("__author__") == "Caffe2", path)
    if weights and all(k.startswith("module.") for k in weights):
        weights = {k[len("module.") :]: v for k, v in weights.items()}
    weights = {k: v for k, v in weights.items() if not IGNORED.search(k)}
    for key in expected:
        prefix, _, leaf = key.rpartition(".")
        if leaf in _BN_STATS and key not in weights and _unversioned(metadata, prefix):
            fill = torch.zeros_like if leaf == "running_mean" else torch.ones_like
            weights[key] = fill(expected[key])
    _check_fit(weights, expected, path, card_path)
    return weights


def _unversioned(metadata: Any, prefix: str) -> bool:
    """detectron2's FrozenBatchNorm2d fills absent stats when its state has no version < 2."""
    if not isinstance(metadata, dict):
        return True
    version = metadata.get(prefix, {}).get("version")
    return version is None or version < 2


def _match(weights: dict[str, Any], model_keys: list[str], c2: bool, path: Path) -> dict[str, Any]:
    try:
        origin = {k: k for k in weights}
        if c2:
            weights, origin = convert_c2(weights)
        pairs = align(model_keys, weights)
    except ValueError as exc:
        raise AdapterError(f"{path}: names do not match the model unambiguously: {exc}") from None
    out = {mk: weights[ck] for mk, ck in pairs.items()}
    used = set(pairs.values())
    for ck, v in weights.items():
        if ck not in used:
            out[origin.get(ck, ck)] = v  # stays unexpected, under the name the file uses
    return out


def _check_fit(weights: dict[str, Any], expected: dict[str, Any], path: Path, card_path: Path):
    problems = fit_problems(weights, expected)
    if problems:
        raise AdapterError(
            f"{path}: the checkpoint does not fit the detectron2 config of {card_path} "
            f"([model.architecture] + [model.kwargs]): " + "; ".join(problems)
        )


def load_weights(module, path: Path, scan_report, card_path: Path, extra_globals=()) -> None:
    """Read ``path`` and load it into ``module`` (strict, after the checks above)."""
    try:
        checkpoint = read_checkpoint(path, scan_report, extra_globals)
    except KpModelError:
        raise
    except (OSError, ValueError, EOFError, RuntimeError) as exc:
        raise AdapterError(
            f"{path}: could not be read as a detectron2 checkpoint: {first_line(exc)}"
        ) from None
    expected = module.state_dict()
    weights = state_dict_for(checkpoint, expected, path, card_path)
    module.load_state_dict(weights, strict=True)
