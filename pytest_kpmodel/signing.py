"""Sign a model card and the files it names; verify such a signature offline.

Scheme (``kpmodel-manifest`` version 1), built on ``cryptography`` alone:

* The **manifest** is canonical JSON (sorted keys, no spaces, UTF-8)::

    {"scheme": "kpmodel-manifest", "version": 1, "hash": "sha256",
     "card": {"path": "kpmodel.toml", "sha256": "<hex>"},
     "files": {"model.safetensors": "<hex>", "LICENSE": "<hex>"}}

  ``card`` is the card file's bytes digest; ``files`` holds every file the card names
  (``ModelCard.named_files()``) by its POSIX path relative to the card's folder, except the
  signature file itself (``provenance.signature``), which cannot cover itself. The card text that
  *names* the signature file is covered, so ``sign_card`` writes ``signature = "..."`` into the
  card first, then signs.
* The **signature file** is a DSSE envelope (https://github.com/secure-systems-lab/dsse), JSON:
  ``{"payloadType": "application/vnd.kpmodel.manifest+json", "payload": <base64 manifest>,
  "signatures": [{"keyid": <sha256 of the public key's DER>, "sig": <base64 Ed25519>}]}``; the
  Ed25519 signature is over DSSE's pre-authentication encoding of type and payload.

``verify_card`` also accepts signatures made with OpenSSF ``model-signing`` and an elliptic-curve
key (``model_signing sign key``: a Sigstore bundle holding a DSSE envelope of an in-toto statement
listing the folder's files), checked with ``cryptography`` alone — the library itself is not a
dependency. Such a bundle must list the card and every named file; every file it lists must match.

Keys: ``generate_keypair`` writes an Ed25519 private key (PKCS#8 PEM, mode 0600) and its public
key (``.pub``, SubjectPublicKeyInfo PEM). Trusted keys are PEM or OpenSSH public keys. An
encrypted private key is opened with the password in ``$KPMODEL_KEY_PASSWORD``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import re
import tempfile
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .card import ModelCard, load_card, resolve_card_path
from .digests import sha256_file
from .errors import KpModelError

SCHEME = "kpmodel-manifest"
SCHEME_VERSION = 1
PAYLOAD_TYPE = "application/vnd.kpmodel.manifest+json"
PASSWORD_ENV = "KPMODEL_KEY_PASSWORD"
MAX_SIGNATURE_BYTES = 1 << 20
# OpenSSF model-signing (key-based): a Sigstore bundle around an in-toto statement.
SIGSTORE_BUNDLE_PREFIX = "application/vnd.dev.sigstore.bundle"
INTOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"
MODEL_SIGNING_PREDICATE = "https://model_signing/signature/v1.0"


class SigningError(KpModelError):
    """Signing could not be done (missing file, wrong key, signature already there...)."""


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


# -- keys ----------------------------------------------------------------------------------------
def key_id(public_key) -> str:
    """sha256 (hex) of the public key's DER SubjectPublicKeyInfo: stable across PEM/OpenSSH."""
    from cryptography.hazmat.primitives import serialization

    der = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).hexdigest()


def generate_keypair(out: str | Path, *, force: bool = False) -> tuple[Path, Path]:
    """Write an Ed25519 private key to ``out`` (mode 0600) and its public key to ``out.pub``."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    private_path = Path(out)
    public_path = private_path.with_name(private_path.name + ".pub")
    if not force:
        for p in (private_path, public_path):
            if p.exists() or p.is_symlink():
                raise SigningError(f"{p}: already exists; pass --force to replace it")
    if not private_path.parent.is_dir():
        raise SigningError(f"{private_path.parent}: no such folder")
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    pub = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    atomic_write(private_path, pem, mode=0o600)
    atomic_write(public_path, pub, mode=0o644)
    return private_path, public_path


def load_private_key(path: str | Path):
    """An Ed25519 private key from a PEM (PKCS#8 / OpenSSH) file."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    path = Path(path)
    data = _read_key_file(path)
    password = os.environ.get(PASSWORD_ENV)
    pw = password.encode() if password else None
    try:
        if b"BEGIN OPENSSH PRIVATE KEY" in data:
            key = serialization.load_ssh_private_key(data, pw)
        else:
            key = serialization.load_pem_private_key(data, pw)
    except TypeError:
        raise SigningError(
            f"{path}: the private key is encrypted; put its password in ${PASSWORD_ENV}"
        ) from None
    except ValueError as exc:
        if b"PUBLIC KEY" in data or data.startswith(b"ssh-"):
            raise SigningError(
                f"{path}: this is a public key; signing needs the private key"
            ) from None
        raise SigningError(f"{path}: not a readable PEM private key ({exc})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningError(
            f"{path}: a {type(key).__name__.lstrip('_')} key; kpmodel signs with Ed25519 keys "
            "(make one with `kpmodel keygen OUT`)"
        )
    return key


def load_public_key(key: str | Path | bytes):
    """A public key from a file path or PEM/OpenSSH bytes (Ed25519 or elliptic-curve)."""
    from cryptography.hazmat.primitives import serialization

    if isinstance(key, bytes) or (isinstance(key, str) and key.lstrip().startswith("-----BEGIN")):
        data = key if isinstance(key, bytes) else key.encode()
        where = "trusted key"
    else:
        where = str(key)
        data = _read_key_file(Path(key))
    text = data.strip()
    if b"PRIVATE KEY" in text:
        raise SigningError(
            f"{where}: holds a private key; trust its public key (e.g. the .pub beside it)"
        )
    try:
        if text.startswith((b"ssh-", b"ecdsa-")):
            return serialization.load_ssh_public_key(text)
        return serialization.load_pem_public_key(text)
    except (ValueError, binascii.Error) as exc:
        raise SigningError(f"{where}: not a readable PEM or OpenSSH public key ({exc})") from None


def _read_key_file(path: Path) -> bytes:
    if not path.is_file():
        raise SigningError(f"{path}: key file not found")
    data = path.read_bytes()
    if len(data) > 1 << 16:
        raise SigningError(f"{path}: too large for a key file ({len(data)} bytes)")
    return data


# -- manifest ------------------------------------------------------------------------------------
def covered_files(card: ModelCard) -> dict[str, Path]:
    """Files a signature covers, by POSIX path relative to the card's folder (the card first)."""
    out = {card.path.name: card.path}
    for key, path in card.named_files().items():
        if key == "provenance.signature":
            continue
        out[_relative(path, card.folder)] = path
    return out


def build_manifest(card: ModelCard, digests: dict[Path, str] | None = None) -> dict[str, Any]:
    """The manifest a signature covers; ``SigningError`` if a named file is missing or a link."""
    files = {}
    for rel, path in covered_files(card).items():
        if path == card.path:
            continue
        _require_regular(path, rel, card.folder)
        files[rel] = _digest(path, digests)
    return {
        "scheme": SCHEME,
        "version": SCHEME_VERSION,
        "hash": "sha256",
        "card": {"path": card.path.name, "sha256": _digest(card.path, digests)},
        "files": files,
    }


def canonical_json(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding."""
    t = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)


# -- signing -------------------------------------------------------------------------------------
def default_signature_name(card: ModelCard) -> str:
    stem = card.model.weights.stem if card.model.weights is not None else card.path.stem
    return f"{stem}.sig"


def sign_card(card_path: str | Path, private_key_path: str | Path, force: bool = False) -> Path:
    """Sign the card and every file it names; returns the signature file's path.

    When the card names no ``[provenance] signature``, ``signature = "<weights stem>.sig"`` is
    inserted under ``[provenance]`` first (the only edit ever made to the card; the table is
    appended when absent), so the signed card names its signature. An existing signature file is
    never replaced without ``force``. Everything is checked before anything is written.
    """
    path = resolve_card_path(card_path)
    card = load_card(path, check_files=False)
    key = load_private_key(private_key_path)
    sig_path = card.provenance.signature
    new_text = None
    if sig_path is None:
        name = default_signature_name(card)
        sig_path = card.folder / name
        new_text = _card_text_with_signature(path, name)
    others = {p: k for k, p in card.named_files().items() if k != "provenance.signature"}
    if sig_path == path or sig_path in others:
        what = "the card itself" if sig_path == path else f"[{others[sig_path]}]"
        raise SigningError(
            f"{path}: [provenance.signature] {sig_path.name!r} is {what}; name a file of its own "
            "(e.g. model.sig)"
        )
    if (sig_path.exists() or sig_path.is_symlink()) and not force:
        raise SigningError(f"{sig_path}: a signature already exists; pass --force to replace it")
    if sig_path.is_symlink() or (sig_path.exists() and not sig_path.is_file()):
        raise SigningError(f"{sig_path}: not a regular file; remove it first")
    for rel, p in covered_files(card).items():
        _require_regular(p, rel, card.folder)
    if new_text is not None:
        atomic_write(path, new_text.encode("utf-8"), mode=_mode(path))
        card = load_card(path, check_files=False)
    payload = canonical_json(build_manifest(card))
    envelope = {
        "payloadType": PAYLOAD_TYPE,
        "payload": base64.b64encode(payload).decode(),
        "signatures": [
            {
                "keyid": key_id(key.public_key()),
                "sig": base64.b64encode(key.sign(pae(PAYLOAD_TYPE, payload))).decode(),
            }
        ],
    }
    atomic_write(sig_path, (json.dumps(envelope, indent=2) + "\n").encode(), mode=0o644)
    return sig_path


_PROVENANCE_HEADER = re.compile(
    r"^[ \t]*\[[ \t]*provenance[ \t]*\][ \t]*(#[^\r\n]*)?(?=\r?$)", re.MULTILINE
)


def _card_text_with_signature(path: Path, name: str) -> str:
    """The card text with ``signature = name`` under [provenance]; verified by re-parsing."""
    text = path.read_bytes().decode("utf-8")  # bytes: keep the file's own line endings
    nl = "\r\n" if "\r\n" in text else "\n"
    line = f"signature = {json.dumps(name)}{nl}"
    m = _PROVENANCE_HEADER.search(text)
    if m is not None:
        end = m.end()
        if text[end : end + len(nl)] == nl:
            end += len(nl)
            new = text[:end] + line + text[end:]
        else:  # header on the last line without a newline
            new = text[:end] + nl + line
    else:
        sep = "" if text.endswith(("\n", "\r\n")) or not text else nl
        new = f"{text}{sep}{nl}[provenance]{nl}{line}"
    expected = tomllib.loads(text)
    table = expected.setdefault("provenance", {})
    try:
        parsed = tomllib.loads(new)
    except tomllib.TOMLDecodeError:
        parsed = None
    if isinstance(table, dict):
        table["signature"] = name
    if parsed != expected:  # the edit must add exactly that key and change nothing else
        raise SigningError(
            f"{path}: could not add the signature key automatically; add "
            f'`signature = "{name}"` under [provenance] by hand and sign again'
        )
    return new


# -- verifying -----------------------------------------------------------------------------------
def verify_card(
    card: ModelCard | str | Path,
    public_keys: Iterable[str | Path | bytes] | Sequence[Any],
    digests: dict[Path, str] | None = None,
) -> VerifyResult:
    """Verify the card's signature offline against trusted public keys.

    ``ok`` only when a trusted key's signature verifies *and* the signed manifest covers the card
    as it is now and every file it names, each with its current digest. ``reason`` says which of
    these failed. Problems with the trusted keys themselves raise ``SigningError``.
    """
    if not isinstance(card, ModelCard):
        card = load_card(card, check_files=False)
    if isinstance(public_keys, str | Path | bytes):
        public_keys = [public_keys]
    keys = _trusted(public_keys)
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


def _trusted(public_keys) -> list[tuple[str, Any, str]]:
    out = []
    for k in public_keys:
        if hasattr(k, "public_bytes") and hasattr(k, "verify"):
            key = k
            label = "key object"
        else:
            key = load_public_key(k)
            label = str(k) if not isinstance(k, bytes) else "PEM bytes"
        out.append((key_id(key), key, label))
    return out


def _b64(value: Any) -> bytes:
    if not isinstance(value, str):
        raise ValueError("not a base64 string")
    return base64.b64decode(value, validate=True)


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


def _check_signature(
    sig_path: Path, ptype: str, payload: bytes, sigs, keys, verify_one
) -> tuple[str | None, str]:
    """The id of the trusted key that verifies, or None and the reason."""
    message = pae(ptype, payload)
    for _claimed, sig in sigs:
        for kid, key, _label in keys:
            if verify_one(key, sig, message):
                return kid, ""
    trusted_ids = {kid for kid, _, _ in keys}
    claimed = [c for c, _ in sigs if c]
    short = ", ".join(k[:16] for k in sorted(trusted_ids))
    if claimed and not any(c in trusted_ids for c in claimed):
        return None, (
            f"{sig_path}: signed by an untrusted key (key id {claimed[0][:16]}); trusted: {short}"
        )
    if claimed:
        return None, (
            f"{sig_path}: the signature does not verify with trusted key {claimed[0][:16]}: "
            "the signature or its signed manifest was altered"
        )
    return None, f"{sig_path}: no signature verifies with any trusted key ({short})"


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


def _verify_kpmodel(card, sig_path, doc, keys, digests) -> VerifyResult:
    try:
        ptype, payload, sigs = _envelope_parts(doc)
    except (ValueError, binascii.Error) as exc:
        return VerifyResult(False, f"{sig_path}: truncated or corrupt signature envelope ({exc})")
    if ptype != PAYLOAD_TYPE:
        return VerifyResult(False, f"{sig_path}: not a kpmodel signature (payloadType {ptype!r})")
    kid, why = _check_signature(sig_path, ptype, payload, sigs, keys, _verify_ed25519)
    if kid is None:
        return VerifyResult(False, why)
    try:
        manifest = json.loads(payload)
        scheme, version = manifest["scheme"], manifest["version"]
        signed_card = manifest["card"]
        signed_files = dict(manifest["files"])
        signed_card_digest = signed_card["sha256"]
    except (ValueError, KeyError, TypeError) as exc:
        return VerifyResult(False, f"{sig_path}: signed manifest is malformed ({exc!r})", kid)
    if scheme != SCHEME or version != SCHEME_VERSION:
        return VerifyResult(
            False, f"{sig_path}: unsupported scheme {scheme!r} version {version!r}", kid
        )
    problems = []
    actual_card = _digest(card.path, digests)
    if actual_card != signed_card_digest:
        problems.append(
            f"the card {card.path.name} changed after signing (sha256 {actual_card[:12]}…, "
            f"signed {str(signed_card_digest)[:12]}…)"
        )
    problems += _compare_files(card, signed_files, digests)
    covered = (card.path.name, *sorted(signed_files))
    if problems:
        return VerifyResult(
            False,
            f"{sig_path}: valid signature by trusted key {kid[:16]}, but " + "; ".join(problems),
            kid,
            covered,
            f"{SCHEME}/{SCHEME_VERSION}",
            {"problems": problems},
        )
    return VerifyResult(
        True,
        f"signed by trusted key {kid[:16]}; covers {', '.join(covered)}",
        kid,
        covered,
        f"{SCHEME}/{SCHEME_VERSION}",
    )


def _compare_files(card: ModelCard, signed: dict[str, str], digests) -> list[str]:
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
        actual = _digest(path, digests)
        if actual != signed[rel]:
            problems.append(
                f"{rel} changed after signing (sha256 {actual[:12]}…, signed "
                f"{str(signed[rel])[:12]}…)"
            )
    for rel in sorted(set(signed) - set(now)):
        p = card.folder / rel
        if not p.is_file():
            problems.append(f"signed file {rel} is missing")
        elif _digest(p, digests) != signed[rel]:
            problems.append(f"signed file {rel} changed after signing")
    return problems


# OpenSSF model-signing, key-based: verified with cryptography alone.
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


def _verify_model_signing(card, sig_path, doc, keys, digests) -> VerifyResult:
    scheme = "model-signing"
    try:
        ptype, payload, sigs = _envelope_parts(doc.get("dsseEnvelope"))
    except (ValueError, binascii.Error) as exc:
        return VerifyResult(False, f"{sig_path}: truncated or corrupt Sigstore bundle ({exc})")
    if ptype != INTOTO_PAYLOAD_TYPE:
        return VerifyResult(False, f"{sig_path}: bundle payloadType {ptype!r} is not in-toto")
    kid, why = _check_signature(sig_path, ptype, payload, sigs, keys, _verify_ecdsa)
    if kid is None:
        material = doc.get("verificationMaterial")
        if isinstance(material, dict) and "publicKey" not in material:
            why += (
                " (a certificate-based or keyless Sigstore bundle: only key-based model-signing "
                "signatures verify offline here)"
            )
        return VerifyResult(False, why)
    try:
        statement = json.loads(payload)
        predicate = statement["predicate"]
        ptype_stmt = statement["predicateType"]
        serialization = predicate.get("serialization", {})
        resources = {r["name"]: r for r in predicate["resources"]}
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        return VerifyResult(False, f"{sig_path}: signed statement is malformed ({exc!r})", kid)
    if ptype_stmt != MODEL_SIGNING_PREDICATE:
        return VerifyResult(False, f"{sig_path}: unsupported predicate {ptype_stmt!r}", kid)
    method, hash_type = serialization.get("method"), serialization.get("hash_type")
    if method != "files" or hash_type != "sha256":
        return VerifyResult(
            False,
            f"{sig_path}: model-signing serialization {method!r}/{hash_type!r} is not supported "
            "here (only per-file sha256); re-sign with default hashing or `kpmodel sign`",
            kid,
        )
    signed = {}
    for name, r in resources.items():
        if r.get("algorithm", "sha256") != "sha256":
            return VerifyResult(False, f"{sig_path}: {name} hashed with {r.get('algorithm')}", kid)
        signed[name] = r.get("digest")
    problems = []
    if card.path.name not in signed:
        problems.append(f"the signature does not cover the card {card.path.name}")
    else:
        actual = _digest(card.path, digests)
        if actual != signed[card.path.name]:
            problems.append(f"the card {card.path.name} changed after signing")
    problems += _compare_files(card, {k: v for k, v in signed.items() if k != card.path.name},
                               digests)  # fmt: skip
    covered = tuple(sorted(signed))
    if problems:
        return VerifyResult(
            False,
            f"{sig_path}: valid model-signing signature by trusted key {kid[:16]}, but "
            + "; ".join(problems),
            kid,
            covered,
            scheme,
            {"problems": problems},
        )
    return VerifyResult(
        True,
        f"signed (model-signing) by trusted key {kid[:16]}; covers {', '.join(covered)}",
        kid,
        covered,
        scheme,
    )


# -- helpers -------------------------------------------------------------------------------------
def _relative(path: Path, folder: Path) -> str:
    return Path(os.path.relpath(path, folder)).as_posix()


def _digest(path: Path, cache: dict[Path, str] | None) -> str:
    if cache is None:
        return sha256_file(path)
    if path not in cache:
        cache[path] = sha256_file(path)
    return cache[path]


def _require_regular(path: Path, rel: str, folder: Path) -> None:
    links = symlinks_on_path(path, folder)
    if links:
        raise SigningError(f"{links[0]}: a symlink on the path of {rel}; sign regular files only")
    if not path.exists():
        raise SigningError(f"{path}: {rel} named by the card is missing")
    if not path.is_file():
        raise SigningError(f"{path}: {rel} is not a regular file")


def _mode(path: Path) -> int:
    try:
        return path.stat().st_mode & 0o777
    except OSError:
        return 0o644


def atomic_write(path: Path, data: bytes, *, mode: int) -> None:
    """Write via a temporary file in the same folder and rename: never a half-written file."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def symlinks_on_path(path: Path, folder: Path) -> list[Path]:
    """Every component of ``path`` below ``folder`` that is a symlink (``lstat``, not followed)."""
    try:
        rel = Path(os.path.relpath(path, folder))
    except ValueError:
        return []
    found = []
    current = folder
    for part in rel.parts:
        current = current / part
        if part in (".", ".."):
            continue
        try:
            if os.path.islink(current):
                found.append(current)
        except OSError:
            break
    return found
