"""The one-line reproduction header printed at the start of a run."""

from __future__ import annotations

from .errors import KpModelError


def reproduction_header(session) -> str:
    try:
        card = session.card
        digest = session.weights_digest or "-"
        device = session.device
    except KpModelError as exc:
        return f"kpmodel: {exc}"
    import torch
    import torchvision

    version = f" {card.model.version}" if card.model.version else ""
    # A bare checkpoint: the digest is what was measured, not what anyone pinned.
    pinned = " UNPINNED (a checkpoint, no card)" if card.unpinned else ""
    s = session.settings
    return (
        f"kpmodel: {card.model.name}{version}{pinned} sha256:{digest[:12]} "
        f"format={card.model.format} "
        f"device={device} precision={s.precision} torch={torch.__version__} "
        f"torchvision={torchvision.__version__} seed={s.seed}"
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
