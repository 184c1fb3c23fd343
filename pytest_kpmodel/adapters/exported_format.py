"""``format = "exported"``: a ``torch.export`` archive (``.pt2``).

Two layouts, told apart by the program names in the archive:

- one program named ``model`` (what ``torch.export.save(ep, path)`` writes): the whole
  detector. Its input is a list of one CHW float image in [0, 1] (torchvision's contract), or
  one CHW tensor; its output torchvision's list of dicts (``boxes``, ``labels``, ``scores``,
  ``keypoints``, ``keypoints_scores``), one dict, or a tuple in that order. Called once per
  image. ``[model.architecture]`` is not needed.
- one program per dense submodule of a torchvision R-CNN, named by its path (``backbone``,
  ``rpn.head``, ``roi_heads.box_head`` ... — what ``pytest_kpmodel.bench.export`` writes, since a
  whole torchvision detector cannot be exported: its output sizes depend on the data). The
  card's ``[model.architecture]``/``[model.kwargs]`` build the eager skeleton (no weights are
  read from it: every parameter must live in a program, else the load is refused) and the
  programs replace those submodules.

Safety: loading requires ``--kp-allow-code``, like TorchScript. A ``.pt2`` is a program, and
``torch.export.load`` / ``load_pt2`` (torch 2.14) are not a safe deserialiser: tensors flagged
``use_pickle`` and pickled constants are read with ``torch.load(weights_only=False)`` /
``pickle.loads``, and the example inputs fall back to ``torch.load(weights_only=False)`` when the
weights-only load fails — a crafted archive can run arbitrary code while loading. Running the
graph itself calls only registered operators (aten, torchvision, custom ops already loaded).
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from typing import Any

from ..errors import AdapterError, ExportUnavailable, first_line
from .options import LoadOptions
from .torch_module import TorchDetectionModel

OUTPUT_ORDER = ("boxes", "labels", "scores", "keypoints", "keypoints_scores")


def load(card, options: LoadOptions):
    from .pt2_archive import FULL_PROGRAM, load_programs, program_names

    if not options.allow_code:
        raise AdapterError(
            f"{card.path}: [model.format] 'exported' (torch.export .pt2) can run code while "
            "loading (torch.export.load unpickles parts of the archive); pass --kp-allow-code "
            "to permit it"
        )
    path = card.model.weights
    try:
        names = program_names(path)
    except (OSError, zipfile.BadZipFile) as exc:
        raise AdapterError(f"{path}: not a torch.export .pt2 archive (zip): {exc}") from None
    if not names:
        raise AdapterError(f"{path}: the archive holds no exported program")
    whole = names == [FULL_PROGRAM]
    if FULL_PROGRAM in names and not whole:
        raise AdapterError(
            f"{path}: holds a whole-model program 'model' and part programs "
            f"({', '.join(n for n in names if n != FULL_PROGRAM)}); expected one or the other"
        )
    if not whole and card.model.architecture is None:
        raise AdapterError(
            f"{card.path}: [model.architecture] missing; {path} holds programs for parts "
            f"({', '.join(names)}) and needs the architecture they belong to"
        )
    try:
        programs = load_programs(path)
    except Exception as exc:  # noqa: BLE001 - any reader failure is one message
        raise AdapterError(
            f"{path}: not a loadable torch.export archive: {first_line(exc)}"
        ) from None
    from .builders import build_module

    try:
        module = program_detector(programs, lambda: build_module(card), options.device)
    except ExportUnavailable as exc:
        raise AdapterError(f"{path}: {exc}") from None
    return TorchDetectionModel(module, options, card.keypoints.num_keypoints, card.model.name)


def program_detector(programs: dict[str, Any], skeleton: Callable[[], Any], device: Any):
    """The detector ``nn.Module`` of an archive's programs: the whole-model program with
    torchvision's contract around it, or ``skeleton()`` (an eager R-CNN, asked for only then)
    with its dense parts replaced by the programs (``ExportUnavailable`` when they do not
    carry the whole model)."""
    from .pt2_archive import FULL_PROGRAM, assemble

    if set(programs) == {FULL_PROGRAM}:
        return WholeProgram(programs[FULL_PROGRAM], device)
    return assemble(skeleton(), programs, device)


def _takes_list(ep) -> bool:
    """Whether the program's first positional input is a list (torchvision's contract)."""
    try:
        spec = ep.call_spec.in_spec
        first = _child(_child(spec, 0), 0)
        return first.type in (list, tuple)
    except (AttributeError, IndexError, TypeError):
        return True


def _child(spec, i: int):
    return spec.child(i) if hasattr(spec, "child") else spec.children_specs[i]


def WholeProgram(ep, device: Any):  # noqa: N802 - a factory returning an nn.Module
    """An ``nn.Module`` with torchvision's detection contract around a whole-model program."""
    import torch

    from .pt2_archive import on_device, program_module

    ep = on_device(ep, device)
    takes_list = _takes_list(ep)

    class _WholeProgram(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.program = program_module(ep)

        def forward(self, images):
            outs = []
            for im in images:
                out = self.program([im]) if takes_list else self.program(im)
                outs.append(_as_dict(out))
            return outs

        def train(self, mode: bool = True):
            self.training = mode
            return self

    return _WholeProgram()


def _as_dict(out) -> dict:
    if isinstance(out, list | tuple) and len(out) == 1 and isinstance(out[0], dict):
        return out[0]
    if isinstance(out, dict):
        return out
    if isinstance(out, list | tuple) and 4 <= len(out) <= 5:
        return dict(zip(OUTPUT_ORDER, out, strict=False))
    raise AdapterError(
        "exported program output not understood: expected torchvision's list of dicts, a dict, "
        f"or a tuple ({', '.join(OUTPUT_ORDER)}); got {type(out).__name__}"
    )
