"""The ``.pt2`` archive of ``torch.export`` programs: written by ``bench.export`` (the parity
run), read by the ``exported`` format.

One archive holds every program under its name (``package_pt2``, which ``torch.export.save``
also uses; ``torch.export.load`` reads only a program named ``model``): either one whole-model
program ``model`` or one program per dense submodule of a torchvision R-CNN, named by its path
(``backbone``, ``rpn.head`` ...), which :func:`assemble` puts back into an eager skeleton.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from ..errors import ExportUnavailable

FULL_PROGRAM = "model"


def save_programs(programs: dict[str, Any], path: str | Path) -> Path:
    """One ``.pt2`` archive holding every program under its name."""
    from torch.export.pt2_archive._package import package_pt2

    path = Path(path)
    if path.suffix != ".pt2":
        raise ValueError(f"{path}: an exported-program archive must end in .pt2")
    path.parent.mkdir(parents=True, exist_ok=True)
    package_pt2(str(path), exported_programs=dict(programs))
    return path


def program_names(path: str | Path) -> list[str]:
    """Names of the programs in a ``.pt2`` archive, from its zip listing (``<archive>/models/
    <name>.json``) — reads no payload, so it is safe on untrusted files."""
    import re
    import zipfile

    pattern = re.compile(r"^[^/]+/models/(.+)\.json$")
    with zipfile.ZipFile(path) as z:
        names = [m.group(1) for n in z.namelist() if (m := pattern.match(n))]
    return sorted(names)


def load_programs(path: str | Path) -> dict[str, Any]:
    """``{name: ExportedProgram}`` from a ``.pt2`` archive. This can unpickle (see
    ``exported_format.py``): only for files the spec allows to run code."""
    from torch.export.pt2_archive._package import load_pt2

    contents = load_pt2(str(path))
    return dict(contents.exported_programs)


def on_device(ep, device: Any):
    """``ep`` moved to ``device`` (unchanged on the CPU, where programs are exported)."""
    import torch

    dev = torch.device(device)
    if dev.type == "cpu":
        return ep
    from torch.export.passes import move_to_device_pass

    return move_to_device_pass(ep, dev)


def assemble(skeleton, programs: dict[str, Any], device: Any = "cpu"):
    """``skeleton`` (an eager R-CNN; deep-copied) with each named submodule replaced by its
    program's module, moved to ``device``. Raises ``ExportUnavailable`` when a parameter or
    buffer of the skeleton would stay outside the programs (it would keep the skeleton's
    random or stale values)."""
    module = copy.deepcopy(skeleton).eval()
    names = [n for n in programs if n != FULL_PROGRAM]
    unknown = [n for n in names if not _has_submodule(module, n)]
    if unknown:
        raise ExportUnavailable(
            f"programs {', '.join(unknown)} name no submodule of {type(module).__name__}"
        )
    uncovered = [
        k
        for k, v in list(module.named_parameters()) + list(module.named_buffers())
        if v.numel() > 0 and not any(k == n or k.startswith(n + ".") for n in names)
    ]
    if uncovered:
        raise ExportUnavailable(
            f"{len(uncovered)} parameter(s)/buffer(s) are in no exported program "
            f"(e.g. {', '.join(uncovered[:3])}); the archive does not carry the whole model"
        )
    for name in names:
        parent, _, leaf = name.rpartition(".")
        part = program_module(on_device(programs[name], device))
        setattr(module.get_submodule(parent) if parent else module, leaf, part)
    return module.to(device)


def program_module(ep):
    """``ep.module()`` inside an ``nn.Module`` that tolerates ``.eval()``/``.train()`` (the
    unlifted program raises ``NotImplementedError`` on ``train()``; its behaviour is fixed at
    export time anyway: these programs were exported in eval mode)."""
    import torch

    class ExportedPart(torch.nn.Module):
        def __init__(self, program) -> None:
            super().__init__()
            self.program = program

        def forward(self, *args, **kwargs):
            return self.program(*args, **kwargs)

        def train(self, mode: bool = True):
            self.training = mode
            return self

    return ExportedPart(ep.module())


def _has_submodule(module, name: str) -> bool:
    try:
        module.get_submodule(name)
    except AttributeError:
        return False
    return True
