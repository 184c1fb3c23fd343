"""Verify a card's signature offline: ``verify_card(card, trusted_keys) -> VerifyResult``.

Two envelopes verify, both DSSE and both checked with ``cryptography`` alone:

* ``kpmodel sign``'s (see :mod:`.signing`): an Ed25519 signature over the ``kpmodel-manifest``;
* OpenSSF ``model-signing`` with an elliptic-curve key (``model_signing sign key``): a Sigstore
  bundle holding a DSSE envelope of an in-toto statement listing the folder's files. The library
  itself is not a dependency. Such a bundle must list the card and every named file; every file
  it lists must match.

Either way, the result is ``ok`` only when a trusted key's signature verifies *and* the signed
list covers the card as it is now and every file it names, each with its current digest.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..card import ModelCard, load_card
from .digests import cached_sha256
from .keys import SigningError, trusted_keys
from .signing import PAYLOAD_TYPE, SCHEME, SCHEME_VERSION, covered_files, pae

MAX_SIGNATURE_BYTES = 1 << 20
# OpenSSF model-signing (key-based): a Sigstore bundle around an in-toto statement.
SIGSTORE_BUNDLE_PREFIX = "application/vnd.dev.sigstore.bundle"
INTOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"
MODEL_SIGNING_PREDICATE = "https://model_signing/signature/v1.0"

Keys = list[tuple[str, Any]]  # (key id, public key)
Digests = dict[Path, str] | None


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    reason: str  # one sentence: what verified, or why not
    key_id: str | None = None  # the trusted key that verified (sha256 of its DER public key)
    covered: tuple[str, ...] = ()  # files the signature covers, relative to the card's folder
    scheme: str = ""  # "kpmodel-manifest/1" | "model-signing" | ""
    details: dict[str, Any] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return self.ok


class _Rejected(Exception):
    """The signed payload cannot be used; the message says why (after the file's path)."""


def verify_card(
    card: ModelCard | str | Path,
    public_keys: Iterable[str | Path | bytes] | Sequence[Any],
    digests: Digests = None,
) -> VerifyResult:
    """Verify the card's signature offline against trusted public keys.

    ``reason`` says what verified, or which check failed. Problems with the trusted keys
    themselves raise ``SigningError``.
    """
    if not isinstance(card, ModelCard):
        card = load_card(card, check_files=False)
    if isinstance(public_keys, str | Path | bytes):
        public_keys = [public_keys]
    keys = trusted_keys(public_keys)
    if not keys:
        raise SigningError("no trusted public key given; pass at least one (--key PUBLIC)")
    sig_path = card.provenance.signature
    if sig_path is None:
        return VerifyResult(False, f"unsigned: {card.path} names no [provenance] signature")
    if not sig_path.is_file():
        return VerifyResult(
            False, f"unsigned: signature file {sig_path} named by [provenance.signature] is missing"
        )
    if sig_path.stat().st_size > MAX_SIGNATURE_BYTES:
        return VerifyResult(
            False, f"{sig_path}: {sig_path.stat().st_size} bytes is too large for a signature file"
        )
    raw = sig_path.read_bytes()
    try:
        doc = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return VerifyResult(
            False,
            f"{sig_path}: truncated or corrupt signature file ({len(raw)} bytes; not valid "
            f"JSON: {exc.msg} at byte {exc.pos})",
        )
    if not isinstance(doc, dict):
        return VerifyResult(False, f"{sig_path}: not a signature envelope (JSON {type(doc)})")
    if str(doc.get("mediaType", "")).startswith(SIGSTORE_BUNDLE_PREFIX):
        return _verify_model_signing(card, sig_path, doc, keys, digests)
    return _verify_kpmodel(card, sig_path, doc, keys, digests)


# -- the two envelopes ---------------------------------------------------------------------------
def _verify_kpmodel(card, sig_path: Path, doc: dict, keys: Keys, digests: Digests) -> VerifyResult:
    opened = _open_envelope(
        sig_path, doc, keys, PAYLOAD_TYPE, _verify_ed25519,
        "signature envelope", "not a kpmodel signature (payloadType {ptype})",
    )  # fmt: skip
    if isinstance(opened, VerifyResult):
        return opened
    kid, payload = opened
    try:
        signed_card, signed_files = _read_manifest(payload)
    except _Rejected as exc:
        return VerifyResult(False, f"{sig_path}: {exc}", kid)
    actual = cached_sha256(card.path, digests)
    problems = []
    if actual != signed_card:
        problems.append(
            f"the card {card.path.name} changed after signing (sha256 {actual[:12]}…, "
            f"signed {str(signed_card)[:12]}…)"
        )
    problems += _compare_files(card, signed_files, digests)
    covered = (card.path.name, *sorted(signed_files))
    return _judged(sig_path, kid, problems, covered, f"{SCHEME}/{SCHEME_VERSION}", "")


def _verify_model_signing(
    card, sig_path: Path, doc: dict, keys: Keys, digests: Digests
) -> VerifyResult:
    material = doc.get("verificationMaterial")
    keyless = (
        " (a certificate-based or keyless Sigstore bundle: only key-based model-signing "
        "signatures verify offline here)"
        if isinstance(material, dict) and "publicKey" not in material
        else ""
    )
    opened = _open_envelope(
        sig_path, doc.get("dsseEnvelope"), keys, INTOTO_PAYLOAD_TYPE, _verify_ecdsa,
        "Sigstore bundle", "bundle payloadType {ptype} is not in-toto", keyless,
    )  # fmt: skip
    if isinstance(opened, VerifyResult):
        return opened
    kid, payload = opened
    try:
        signed = _read_statement(payload)
    except _Rejected as exc:
        return VerifyResult(False, f"{sig_path}: {exc}", kid)
    name = card.path.name
    problems = []
    if name not in signed:
        problems.append(f"the signature does not cover the card {name}")
    elif cached_sha256(card.path, digests) != signed[name]:
        problems.append(f"the card {name} changed after signing")
    others = {k: v for k, v in signed.items() if k != name}
    problems += _compare_files(card, others, digests)
    return _judged(sig_path, kid, problems, tuple(sorted(signed)), "model-signing", "model-signing")


def _read_manifest(payload: bytes) -> tuple[str, dict[str, str]]:
    """(the card's signed digest, {file: signed digest}) from a kpmodel manifest."""
    try:
        manifest = json.loads(payload)
        scheme, version = manifest["scheme"], manifest["version"]
        card_entry = manifest["card"]
        signed_files = dict(manifest["files"])
        signed_card = card_entry["sha256"]
    except (ValueError, KeyError, TypeError) as exc:
        raise _Rejected(f"signed manifest is malformed ({exc!r})") from None
    if scheme != SCHEME or version != SCHEME_VERSION:
        raise _Rejected(f"unsupported scheme {scheme!r} version {version!r}")
    return signed_card, signed_files


def _read_statement(payload: bytes) -> dict[str, Any]:
    """{file: signed sha256} from a model-signing in-toto statement (per-file sha256 only)."""
    try:
        statement = json.loads(payload)
        predicate = statement["predicate"]
        predicate_type = statement["predicateType"]
        serialization = predicate.get("serialization", {})
        resources = {r["name"]: r for r in predicate["resources"]}
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise _Rejected(f"signed statement is malformed ({exc!r})") from None
    if predicate_type != MODEL_SIGNING_PREDICATE:
        raise _Rejected(f"unsupported predicate {predicate_type!r}")
    method, hash_type = serialization.get("method"), serialization.get("hash_type")
    if method != "files" or hash_type != "sha256":
        raise _Rejected(
            f"model-signing serialization {method!r}/{hash_type!r} is not supported here (only "
            "per-file sha256); re-sign with default hashing or `kpmodel sign`"
        )
    signed = {}
    for name, r in resources.items():
        if r.get("algorithm", "sha256") != "sha256":
            raise _Rejected(f"{name} hashed with {r.get('algorithm')}")
        signed[name] = r.get("digest")
    return signed


# -- shared steps --------------------------------------------------------------------------------
def _open_envelope(
    sig_path: Path,
    envelope: Any,
    keys: Keys,
    payload_type: str,
    verify_one: Callable[[Any, bytes, bytes], bool],
    container: str,
    wrong_type: str,
    unverified_hint: str = "",
) -> tuple[str, bytes] | VerifyResult:
    """(id of the trusted key whose signature verifies, the signed payload), or why not."""
    try:
        ptype, payload, sigs = _envelope_parts(envelope)
    except (ValueError, binascii.Error) as exc:
        return VerifyResult(False, f"{sig_path}: truncated or corrupt {container} ({exc})")
    if ptype != payload_type:
        return VerifyResult(False, f"{sig_path}: " + wrong_type.format(ptype=repr(ptype)))
    message = pae(ptype, payload)
    for _claimed, sig in sigs:
        for kid, key in keys:
            if verify_one(key, sig, message):
                return kid, payload
    return VerifyResult(False, _why_unverified(sig_path, sigs, keys) + unverified_hint)


def _envelope_parts(envelope: Any) -> tuple[str, bytes, list[tuple[str, bytes]]]:
    if not isinstance(envelope, dict):
        raise ValueError("no DSSE envelope")
    ptype = envelope.get("payloadType")
    if not isinstance(ptype, str):
        raise ValueError("no payloadType")
    payload = _b64(envelope.get("payload"))
    sigs = envelope.get("signatures")
    if not isinstance(sigs, list) or not sigs:
        raise ValueError("no signatures")
    out = []
    for s in sigs:
        if not isinstance(s, dict):
            raise ValueError("a signature entry is not an object")
        out.append((str(s.get("keyid") or ""), _b64(s.get("sig"))))
    return ptype, payload, out


def _b64(value: Any) -> bytes:
    if not isinstance(value, str):
        raise ValueError("not a base64 string")
    return base64.b64decode(value, validate=True)


def _why_unverified(sig_path: Path, sigs: list[tuple[str, bytes]], keys: Keys) -> str:
    trusted_ids = {kid for kid, _ in keys}
    claimed = [c for c, _ in sigs if c]
    short = ", ".join(k[:16] for k in sorted(trusted_ids))
    if claimed and not any(c in trusted_ids for c in claimed):
        return (
            f"{sig_path}: signed by an untrusted key (key id {claimed[0][:16]}); trusted: {short}"
        )
    if claimed:
        return (
            f"{sig_path}: the signature does not verify with trusted key {claimed[0][:16]}: "
            "the signature or its signed manifest was altered"
        )
    return f"{sig_path}: no signature verifies with any trusted key ({short})"


def _judged(
    sig_path: Path,
    kid: str,
    problems: list[str],
    covered: tuple[str, ...],
    scheme: str,
    label: str,
) -> VerifyResult:
    """A verified signature: ok when nothing it covers changed. ``label``: the scheme's name
    in messages ("" for kpmodel's own)."""
    if problems:
        valid = f"valid {label} signature" if label else "valid signature"
        return VerifyResult(
            False,
            f"{sig_path}: {valid} by trusted key {kid[:16]}, but " + "; ".join(problems),
            kid,
            covered,
            scheme,
            {"problems": problems},
        )
    signed = f"signed ({label})" if label else "signed"
    return VerifyResult(
        True,
        f"{signed} by trusted key {kid[:16]}; covers {', '.join(covered)}",
        kid,
        covered,
        scheme,
    )


def _compare_files(card: ModelCard, signed: dict[str, str], digests: Digests) -> list[str]:
    """Each covered file against its signed digest; and signed files that are gone."""
    problems = []
    now = covered_files(card)
    now.pop(card.path.name, None)
    for rel, path in now.items():
        key = next((k for k, p in card.named_files().items() if p == path), "?")
        if rel not in signed:
            problems.append(f"the signature does not cover {rel} (named by [{key}])")
            continue
        if not path.is_file():
            problems.append(f"{rel} (named by [{key}]) is missing")
            continue
        actual = cached_sha256(path, digests)
        if actual != signed[rel]:
            problems.append(
                f"{rel} changed after signing (sha256 {actual[:12]}…, signed "
                f"{str(signed[rel])[:12]}…)"
            )
    for rel in sorted(set(signed) - set(now)):
        p = card.folder / rel
        if not p.is_file():
            problems.append(f"signed file {rel} is missing")
        elif cached_sha256(p, digests) != signed[rel]:
            problems.append(f"signed file {rel} changed after signing")
    return problems


# -- signature algorithms ------------------------------------------------------------------------
def _verify_ed25519(key, sig: bytes, message: bytes) -> bool:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    if not isinstance(key, Ed25519PublicKey):
        return False
    try:
        key.verify(sig, message)
    except InvalidSignature:
        return False
    return True


def _verify_ecdsa(key, sig: bytes, message: bytes) -> bool:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    if not isinstance(key, ec.EllipticCurvePublicKey):
        return False
    algo = {256: hashes.SHA256, 384: hashes.SHA384, 521: hashes.SHA512}.get(key.curve.key_size)
    if algo is None:
        return False
    try:
        key.verify(sig, message, ec.ECDSA(algo()))
    except InvalidSignature:
        return False
    return True
