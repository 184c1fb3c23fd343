"""``--kp-model CHECKPOINT``: a bare checkpoint where a card is expected.

The first thing a new user passes is the checkpoint's own path. Its format is told by content
(the security scanner, as ``kpmodel card init`` does), and the card ``card init`` would write is
built in memory, without a version or a pinned digest (``ModelCard.unpinned``): nothing is
written beside the user's file. Such a run tests the file it was given and says so in the
header and the report; the gates that need what only a vendor's card holds (the pinned digest,
source and signature, the license, the claims) fail or skip with ``UNPINNED_REASON``, never
pass (``checks.evaluate``).
"""

from __future__ import annotations

from pathlib import Path

from ..card import ModelCard, load_card, parse_card, resolve_card_path
from ..errors import CardError

# detect_kind's answers (magic bytes only) that may be a checkpoint; the scan tells them apart
CHECKPOINT_KINDS = frozenset({"zip", "torch-tar", "safetensors", "torch-legacy", "pickle", "onnx"})
CARD_INIT = "kpmodel card init {path}"
NEITHER = (
    "neither a model card (kpmodel.toml: UTF-8 TOML with a [model] table) nor a checkpoint "
    "kpmodel reads by content (safetensors, a torch.save / TorchScript / torch.export zip, ONNX, "
    "a torch or detectron2 pickle); for a checkpoint, write its card with `{init}`"
)
UNPINNED_REASON = (
    "unpinned: --kp-model is the checkpoint {path}, not a model card: nothing pins its digest, "
    "source, signature, license or claims; write and review a card with `{init}`"
)


def load_card_or_checkpoint(path: str | Path) -> ModelCard:
    """The card at ``path`` (a ``kpmodel.toml`` or its folder), or the unpinned in-memory card
    of the checkpoint at ``path``. Anything else: one ``CardError`` saying what was expected."""
    p = resolve_card_path(path)
    from ..security import detect_kind

    kind = detect_kind(p)
    if kind in CHECKPOINT_KINDS:
        return checkpoint_card(p)
    neither = CardError(p, NEITHER.format(init=CARD_INIT.format(path=p)))
    if kind == "empty":
        raise CardError(p, "an empty file: " + str(neither).removeprefix(f"{p}: "))
    try:
        return load_card(p)
    except CardError as exc:
        # Not named like a card, and wrong at the top (not UTF-8, not TOML, no [model], other
        # top-level keys): the user did not mean a card.
        if p.suffix != ".toml" and (exc.key is None or "." not in exc.key):
            raise neither from None
        raise


def checkpoint_card(path: Path) -> ModelCard:
    """The card ``kpmodel card init`` would write for ``path``, unpinned and in memory."""
    from .architecture import guess_architecture
    from .card_init import detect_format, starter_card

    init = CARD_INIT.format(path=path)
    try:
        det = detect_format(path)
    except CardError as exc:
        reason = str(exc).removeprefix(f"{path}: ")
        raise CardError(path, f"{reason}; to test it, write its card with `{init}`") from None
    if (
        det.format in ("safetensors", "pytorch")
        and not guess_architecture(det.tensors).architecture
    ):
        raise CardError(
            path,
            f"a {det.format} state dict whose tensor names match no builder kpmodel knows: its "
            f"card must name the architecture; `{init}` writes a starter card to complete",
        )
    return parse_card(starter_card(path, pin=False, det=det), path)


def unpinned_reason(card: ModelCard) -> str:
    return UNPINNED_REASON.format(path=card.path, init=CARD_INIT.format(path=card.path))
