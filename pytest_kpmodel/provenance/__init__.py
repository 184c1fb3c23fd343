"""Is this the model the vendor published, and what did they change? Digests, signatures, diff.

Entry points (plain Python, no pytest)::

    from pytest_kpmodel.provenance import check_provenance, sign_card, verify_card, diff_cards
    check_provenance(card, trusted_keys=[...], sources=[...], base=...)  # -> CheckResult
    sign_card(card_path, private_key_path)                                # -> signature path
    verify_card(card, trusted_keys)                                       # -> VerifyResult
    diff_cards(card, base_card)                                           # -> ModelDiff

Modules: ``marker`` (``kp_provenance`` against the run), ``check`` (the provenance checks:
files, sha256, signature, source, base), ``digests`` (streamed sha256, cached per call or
remembered across runs by file identity), ``keys`` (Ed25519 key pairs, trusted public keys), ``signing`` (the signed manifest,
``kpmodel sign``), ``verify`` (offline verification of kpmodel and OpenSSF model-signing
signatures), ``paths`` (symlinks on a path, safe writes), ``diff`` (``kp_diff``: tensors, layers,
parameters, FLOPs), ``modifications`` (does the card mention what changed), ``diff_text`` (the
diff as a table), ``card_init`` (``kpmodel card init``: the format as the security scanner tells
it), ``architecture`` (the builder guessed from tensor names), ``cli`` (``kpmodel card init |
sign | verify | diff | keygen``).

May import: the standard library, ``cryptography``, ``safetensors`` and torch (inside functions
only), and from this project ``card``, ``errors``, ``findings``, ``keypoints``, ``marker_args``,
``security`` (the scanner and the safe loader) and ``adapters`` (to read a model for the diff).
Never pytest, ``session`` or ``plugin``. Importing the package does not import torch.
"""

from __future__ import annotations

from ..lazy import lazy_exports

# name -> submodule; imported on first use (PEP 562), so that ``provenance.digests`` (which the
# session imports) does not import the signing and diff machinery.
_EXPORTS = {
    "check_provenance": "check", "ModelDiff": "diff", "diff_cards": "diff",
    "sign_card": "signing", "VerifyResult": "verify", "verify_card": "verify",
}  # fmt: skip

__getattr__, __dir__ = lazy_exports(globals(), _EXPORTS)


__all__ = [
    "ModelDiff",
    "VerifyResult",
    "check_provenance",
    "diff_cards",
    "sign_card",
    "verify_card",
]
