"""``kp_provenance(...)`` against the run: ``checks.EVALUATORS["kp_provenance"]``.

The checks themselves are :func:`.check.check_provenance`; this adds what the run knows: its
card, its rootdir (relative ``trusted_keys``/``base`` paths resolve against it) and the weights
digest the session has already computed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..findings import CheckResult
from ..marker_args import check_marker_args
from .check import check_provenance

MARKER_ARGS = ("sha256", "signature", "trusted_keys", "sources", "base", "files")


def evaluate(session, *args: Any, root: str | Path | None = None, **kwargs: Any) -> CheckResult:
    """``kp_provenance(...)`` against the run's card.

    Marker arguments are keywords only (a typo is an error naming it, never silently ignored).
    Relative ``trusted_keys``/``base`` resolve against ``root`` (the plugin passes rootdir). The
    session's cached weights digest is reused.
    """
    check_marker_args("kp_provenance", args, kwargs, MARKER_ARGS)
    card = session.card
    digests: dict[Path, str] = {}
    weights = card.model.weights
    if weights is not None and weights.is_file() and not weights.is_symlink():
        digests[weights] = session.weights_digest
    if root is None:
        root = session.settings.rootdir
    return check_provenance(card, root=root, digests=digests, **kwargs)
