"""Security checks for model files and model code (issue #5). No pytest, no torch at import.

Static scanning (never unpickles, imports or runs anything from the file)::

    from pytest_kpmodel.security import scan_path, scan_paths, ScanReport, ScanLimits
    report = scan_path(card.weights_path, extra_globals=(), allow_code=False, limits=None)
    report.verdict      # "clean" | "unsafe" | "unverifiable"
    report.ok           # verdict == "clean"
    report.kind         # torch-zip | torch-legacy | safetensors | onnx | torchscript | ...
    report.findings     # list[pytest_kpmodel.findings.Finding], check "security.*"
    report.raise_if_unsafe()   # RefusedToLoad("refused to load: <finding>; ...")

Loading (only after a clean scan; ``weights_only=True`` only)::

    from pytest_kpmodel.security import load_state_dict_safely, pick_weights
    state_dict = load_state_dict_safely(path, report, map_location=device)

Runtime guard (PEP 578 audit hook; see :mod:`.guard` for what it cannot see)::

    from pytest_kpmodel.security import RuntimeGuard
    guard = RuntimeGuard(network=False, subprocess=False, writes=False,
                         allowed_write_dirs=[tmp_dir])
    with guard.active():
        model = build()
    guard.violations, guard.findings()

How the plugin's ``kp_security(pickle="strict", network=False, subprocess=False,
writes=False, code=False)`` marker maps onto this API:

* ``pickle="strict"`` -> ``scan_path(weights, allow_code=code)``; the ``kp_scan`` fixture is
  the ``ScanReport`` (or its findings); a non-clean verdict makes ``kp_model`` raise
  ``report.raise_if_unsafe()`` before anything is loaded; adapters call
  ``load_state_dict_safely(path, report)`` for state-dict formats;
* ``network``/``subprocess``/``writes`` -> ``RuntimeGuard(network=..., subprocess=...,
  writes=..., allowed_write_dirs=[<run temp dir>])`` active around model loading and every
  ``predict`` call; ``guard.findings()`` become the marker's findings;
* ``code`` -> ``allow_code`` (TorchScript, custom ONNX ops; ``python``-format factories are
  the plugin's decision: they run code by definition).

Modules, from the bottom up (each imports only those above it):

* ``report`` (findings, verdicts, limits), ``allowlist`` (the reviewed globals and profiles);
* the format parsers: ``pickle_scan/`` (the symbolic unpickler), ``zip_scan``, ``numpy_scan``,
  ``numpy_pickle`` (detectron2's numpy pickles: scan profile and restricted loader),
  ``safetensors_scan``, ``onnx_scan``;
* ``containers/`` (torch zip, torch.export, legacy, tar, stacked pickles) with ``inert`` (data
  that is no weights format; the pickles after it are scanned by ``containers.pickles``, and
  ``containers.torch_zip`` reports a ``.npz`` through it), ``context`` (one scan's state),
  ``dispatch`` (which scanner reads which bytes), ``scan`` (the API above);
* ``loading`` (scan, then ``weights_only`` load), ``guard`` / ``guarded_model`` (audit hook),
  ``policy`` / ``marker`` (the ``kp_security`` marker), ``cli`` (``kpmodel scan``).

A feature package that sits under ``card`` and ``adapters`` (nothing is loaded before its scan,
so the loaders call it): it may import ``errors``, ``findings`` and ``marker_args`` only; never
pytest, the session, the plugin or another package of the project. torch is imported only inside
the functions that load or guard.
"""

from __future__ import annotations

from ..lazy import lazy_exports

# name -> submodule; imported on first use (PEP 562), so that importing one module of the
# package (the session imports ``policy``) does not build the scanner.
_EXPORTS = {
    "DEFAULT_ALLOWLIST": "allowlist", "Allowed": "allowlist", "Allowlist": "allowlist",
    "GuardEvent": "guard", "GuardViolation": "guard", "RuntimeGuard": "guard",
    "load_state_dict_safely": "loading", "pick_weights": "loading",
    "ScanLimits": "report", "ScanReport": "report",
    "detect_kind": "scan", "scan_bytes": "scan", "scan_path": "scan", "scan_paths": "scan",
}  # fmt: skip

__getattr__, __dir__ = lazy_exports(globals(), _EXPORTS)


__all__ = [
    "DEFAULT_ALLOWLIST",
    "Allowed",
    "Allowlist",
    "GuardEvent",
    "GuardViolation",
    "RuntimeGuard",
    "ScanLimits",
    "ScanReport",
    "detect_kind",
    "load_state_dict_safely",
    "pick_weights",
    "scan_bytes",
    "scan_path",
    "scan_paths",
]
