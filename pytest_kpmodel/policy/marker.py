"""The run's side of ``kp_license`` and ``kp_dependencies`` markers, and of ``--kp-sbom``.

``checks.EVALUATORS`` names ``evaluate_kp_license`` and ``evaluate_kp_dependencies``: each takes
the run (``KpSession``) and the marker's keyword arguments. The plugin calls
``write_session_sbom`` at the end of the run.
"""

from __future__ import annotations

from typing import Any

from ..errors import KpModelError
from .dependencies import kp_dependencies
from .license import kp_license
from .result import PolicyResult
from .sbom import SbomWritten, write_sbom


def evaluate_kp_license(session, *args: Any, **kwargs: Any) -> PolicyResult:
    """``checks.EVALUATORS["kp_license"]``: the marker's keyword arguments on the run's card."""
    if args:
        raise KpModelError("kp_license takes keyword arguments only, e.g. kp_license(allow=[...])")
    return kp_license(session.card, **kwargs)


def evaluate_kp_dependencies(session, *args: Any, **kwargs: Any) -> PolicyResult:
    """``checks.EVALUATORS["kp_dependencies"]``: uses the run's card, device, ``--kp-osv-db``
    and, for custom ops, the run's model (loaded lazily; a load failure skips that sub-check)."""
    if args:
        raise KpModelError("kp_dependencies takes keyword arguments only, e.g. python='>=3.10'")
    kwargs.setdefault("osv_db", getattr(session.settings, "osv_db", None))
    kwargs.setdefault("device", session.device)
    if kwargs.get("custom_ops") is not False:
        kwargs.setdefault("model", lambda: session.model)
    return kp_dependencies(session.card, **kwargs)


def write_session_sbom(session) -> SbomWritten | None:
    """At the end of the run: write ``--kp-sbom`` (None when the option is not set)."""
    path = getattr(session.settings, "sbom", None)
    if path is None:
        return None
    card = session.card if session.has_model else None
    digest = session.weights_digest if card is not None else None
    return write_sbom(path, card, model_sha256=digest)
