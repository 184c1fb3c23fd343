"""Loading weights only after the scan passed, and only the safe way.

API (for the adapters)::

    load_state_dict_safely(path, report=None, *, map_location="cpu", mmap=False,
                           extra_globals=(), limits=None, allowlists=(),
                           stand_ins=None) -> Any
    pick_weights(paths) -> pathlib.Path

``load_state_dict_safely``:

* scans the file first when no ``report`` is given; refuses (``RefusedToLoad``, message
  ``"refused to load: <finding>; ..."``) unless the verdict is ``clean``;
* refuses a report made for another file, or a file whose identity (device, inode, size,
  mtime, ctime) changed since it was scanned (it was replaced or modified in between);
* safetensors -> ``safetensors.torch.load_file`` (no pickle at all);
* torch zip / legacy -> ``torch.load(..., weights_only=True)`` - never ``weights_only=False``,
  with no fallback - inside ``torch.serialization.safe_globals`` for exactly the allow-listed
  globals the file uses beyond torch's own weights-only list (``argparse.Namespace``) and the
  caller's ``extra_globals`` (which must also have been given to the scan), and, for an opt-in
  profile (``allowlists``, see ``allowlist.PROFILES``), the caller's ``stand_ins``
  (``{"module.name": object}``: the unpickler rebuilds those globals as these objects, e.g. a
  family adapter's own ``nn.Module`` classes in place of a package that is not installed).
  Without ``mmap`` the already-verified open file object is passed to torch (no second path
  lookup); with
  ``mmap=True`` (zip only) torch opens the path itself and the identity is re-checked after;
* anything else (TorchScript, ONNX, export archives) is not a state dict: ``RefusedToLoad``.

``pick_weights`` chooses among candidate files by *content*: safetensors first, then a torch
zip archive, then the legacy torch format; others are never chosen.
"""

from __future__ import annotations

import importlib
import os
import pathlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..errors import RefusedToLoad, first_line
from .allowlist import DEFAULT_ALLOWLIST, Allowlist, parse_global
from .report import ScanLimits, ScanReport, file_identity
from .scan import detect_kind, scan_path

_PREFERENCE = {"safetensors": 0, "zip": 1, "torch-zip": 1, "torch-legacy": 2}
# allow-listed globals torch's weights_only unpickler does not accept by itself
_NEEDS_SAFE_GLOBALS = {"argparse.Namespace"}


def pick_weights(paths: Sequence[str | os.PathLike[str]]) -> pathlib.Path:
    """The best loadable candidate: safetensors > torch zip > legacy torch (by content)."""
    ranked = []
    for i, p in enumerate(paths):
        kind = detect_kind(p)
        if kind in _PREFERENCE:
            ranked.append((_PREFERENCE[kind], i, pathlib.Path(p)))
    if not ranked:
        raise RefusedToLoad(
            "refused to load: none of " + ", ".join(map(str, paths)) + " is a safetensors or "
            "torch state-dict file"
        )
    return min(ranked)[2]


def _resolve_global(spec: str | tuple[str, str]) -> Any:
    module, name = parse_global(spec)
    obj: Any = importlib.import_module(module)
    for part in name.split("."):
        obj = getattr(obj, part)
    return obj


def load_state_dict_safely(
    path: str | os.PathLike[str],
    report: ScanReport | None = None,
    *,
    map_location: Any = "cpu",
    mmap: bool = False,
    extra_globals: Iterable[str | tuple[str, str]] = (),
    limits: ScanLimits | None = None,
    allowlists: Iterable[str] = (),
    stand_ins: Mapping[str, Any] | None = None,
) -> Any:
    extra = list(extra_globals)
    profiles = tuple(allowlists)
    p = os.fspath(path)
    if report is None:
        report = scan_path(p, extra_globals=extra, limits=limits, allowlists=profiles)
    if os.path.realpath(report.path) != os.path.realpath(p):
        raise RefusedToLoad(f"refused to load: {p}: the scan report is for {report.path}")
    report.raise_if_unsafe()
    if report.kind == "safetensors":
        from safetensors.torch import load_file

        _check_identity(p, report)
        device = str(map_location) if map_location is not None else "cpu"
        return load_file(p, device=device)
    if report.kind not in ("torch-zip", "torch-legacy"):
        raise RefusedToLoad(
            f"refused to load: {p}: a {report.kind} file is not a state dict "
            "(use the adapter for that format)"
        )
    import torch

    stand_ins = dict(stand_ins or {})
    needed = [g for g in report.globals if g in _NEEDS_SAFE_GLOBALS and g not in stand_ins]
    extra_names = {".".join(parse_global(s)) for s in extra}
    safe: list[Any] = [_resolve_global(g) for g in needed]
    safe += [_resolve_global(s) for s in extra if ".".join(parse_global(s)) in report.globals]
    # a profile's globals are rebuilt as the caller's stand-ins: (object, "module.name") pairs
    safe += [(stand_ins[g], g) for g in report.globals if g in stand_ins]
    allowed = Allowlist(profiles=profiles).entries if profiles else DEFAULT_ALLOWLIST
    unexpected = [
        g for g in report.globals if tuple(g.rsplit(".", 1)) not in allowed and g not in extra_names
    ]
    if unexpected:  # cannot happen for a clean report; defensive
        raise RefusedToLoad(f"refused to load: {p}: imports {unexpected[0]}")
    use_mmap = bool(mmap) and report.kind == "torch-zip"
    with torch.serialization.safe_globals(safe):
        try:
            if use_mmap:
                _check_identity(p, report)
                out = torch.load(p, map_location=map_location, weights_only=True, mmap=True)
                _check_identity(p, report)
                return out
            with open(p, "rb") as f:
                if file_identity(os.fstat(f.fileno())) != report.identity:
                    raise RefusedToLoad(
                        f"refused to load: {p}: the file changed since it was scanned"
                    )
                return torch.load(f, map_location=map_location, weights_only=True)
        except RefusedToLoad:
            raise
        except Exception as e:  # an UnpicklingError from weights_only, a corrupt archive
            raise RefusedToLoad(
                f"refused to load: {p}: torch.load(weights_only=True) failed: {first_line(e)}"
            ) from None


def _check_identity(p: str, report: ScanReport) -> None:
    try:
        ident = file_identity(os.stat(p))
    except OSError as e:
        raise RefusedToLoad(f"refused to load: {p}: {e.strerror}") from None
    if report.identity is not None and ident != report.identity:
        raise RefusedToLoad(f"refused to load: {p}: the file changed since it was scanned")
