"""Sign a model card and the files it names (``kpmodel sign``).

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

``sign_card`` signs with an Ed25519 key (see :mod:`.keys`); :mod:`.verify` checks such a
signature, and OpenSSF model-signing ones, offline.
"""

from __future__ import annotations

import base64
import json
import re
import tomllib
from pathlib import Path
from typing import Any

from ..card import ModelCard, load_card, resolve_card_path
from .digests import cached_sha256
from .keys import SigningError, key_id, load_private_key
from .paths import atomic_write, relative_posix, symlinks_on_path

SCHEME = "kpmodel-manifest"
SCHEME_VERSION = 1
PAYLOAD_TYPE = "application/vnd.kpmodel.manifest+json"


# -- manifest ------------------------------------------------------------------------------------
def covered_files(card: ModelCard) -> dict[str, Path]:
    """Files a signature covers, by POSIX path relative to the card's folder (the card first)."""
    out = {card.path.name: card.path}
    for key, path in card.named_files().items():
        if key == "provenance.signature":
            continue
        out[relative_posix(path, card.folder)] = path
    return out


def build_manifest(card: ModelCard, digests: dict[Path, str] | None = None) -> dict[str, Any]:
    """The manifest a signature covers; ``SigningError`` if a named file is missing or a link."""
    files = {}
    for rel, path in covered_files(card).items():
        if path == card.path:
            continue
        _require_regular(path, rel, card.folder)
        files[rel] = cached_sha256(path, digests)
    return {
        "scheme": SCHEME,
        "version": SCHEME_VERSION,
        "hash": "sha256",
        "card": {"path": card.path.name, "sha256": cached_sha256(card.path, digests)},
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
