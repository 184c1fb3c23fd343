"""The one-line reproduction header printed at the start of a run."""

from __future__ import annotations

from .errors import KpModelError


def _version(name: str) -> str:
    """A package's version without importing it (a cached run that only evaluates never
    imports torch); the imported module's own when it is loaded."""
    import sys
    from importlib import metadata

    module = sys.modules.get(name)
    if module is not None and hasattr(module, "__version__"):
        return str(module.__version__)
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "-"


def reproduction_header(session) -> str:
    try:
        card = session.card
        digest = session.weights_digest or "-"
        device = session.device
    except KpModelError as exc:
        return f"kpmodel: {exc}"
    torch, torchvision = _version("torch"), _version("torchvision")

    version = f" {card.model.version}" if card.model.version else ""
    # A bare checkpoint: the digest is what was measured, not what anyone pinned.
    pinned = " UNPINNED (a checkpoint, no card)" if card.unpinned else ""
    s = session.settings
    return (
        f"kpmodel: {card.model.name}{version}{pinned} sha256:{digest[:12]} "
        f"format={card.model.format} "
        f"device={device} precision={s.precision} torch={torch} "
        f"torchvision={torchvision} seed={s.seed}"
        + (
            f" hypothesis-profile={session.hypothesis_profile}"
            if session.hypothesis_profile
            else ""
        )
        + _load()
    )


def _load() -> str:
    """' load=2.1/2cores': runnable threads against the cores at the start of the run (the
    speed gates record the load during their own timing; ' busy' marks an oversubscribed
    machine, whose timings mean less)."""
    from .bench.load import snapshot

    reading = snapshot()
    if reading.load is None:
        return ""
    return f" load={reading.load:.1f}/{reading.cores}cores" + (" busy" if reading.busy else "")
