"""Keys for ``kpmodel sign`` / ``verify``: Ed25519 key pairs, and the public keys a spec trusts.

``generate_keypair`` writes an Ed25519 private key (PKCS#8 PEM, mode 0600) and its public key
(``.pub``, SubjectPublicKeyInfo PEM). Trusted keys are PEM or OpenSSH public keys (Ed25519, or
elliptic-curve for OpenSSF model-signing). An encrypted private key is opened with the password
in ``$KPMODEL_KEY_PASSWORD``. ``cryptography`` is imported only when a key is used.
"""

from __future__ import annotations

import binascii
import hashlib
import os
from pathlib import Path
from typing import Any

from ..errors import KpModelError
from .paths import atomic_write

PASSWORD_ENV = "KPMODEL_KEY_PASSWORD"


class SigningError(KpModelError):
    """Signing could not be done (missing file, wrong key, signature already there...)."""


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


def trusted_keys(public_keys) -> list[tuple[str, Any]]:
    """(key id, key) for each trusted key: key objects, key files, or PEM text or bytes."""
    out = []
    for k in public_keys:
        key = k if hasattr(k, "public_bytes") and hasattr(k, "verify") else load_public_key(k)
        out.append((key_id(key), key))
    return out
