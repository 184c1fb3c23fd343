"""sign_card / verify_card: what is signed, how the card is edited, what is never overwritten."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from prov_helpers import copy_model

from kp_factories import make_model
from pytest_kpmodel.card import load_card
from pytest_kpmodel.provenance.keys import SigningError, generate_keypair, key_id, load_public_key
from pytest_kpmodel.provenance.signing import (
    PAYLOAD_TYPE,
    build_manifest,
    canonical_json,
    sign_card,
)
from pytest_kpmodel.provenance.verify import verify_card


@pytest.fixture(scope="module")
def unsigned(tmp_path_factory) -> Path:
    """An unsigned tiny model without [provenance]; copy before use."""
    return make_model(tmp_path_factory.mktemp("unsigned") / "m", seed=2)


def test_sign_appends_provenance_table_and_covers_named_files(unsigned, keys, tmp_path):
    card = copy_model(unsigned, tmp_path / "m")
    (card.parent / "LICENSE").write_text("Apache-2.0\n")
    card.write_text(card.read_text() + '\n[license]\nspdx = "Apache-2.0"\nfile = "LICENSE"\n')
    before = card.read_text()
    sig = sign_card(card, keys["vendor"])
    assert sig == card.parent / "model.sig"
    after = card.read_text()
    assert after.startswith(before)  # only appended
    assert after[len(before) :] == '\n[provenance]\nsignature = "model.sig"\n'
    env = json.loads(sig.read_text())
    assert env["payloadType"] == PAYLOAD_TYPE
    manifest = json.loads(base64.b64decode(env["payload"]))
    assert manifest["scheme"] == "kpmodel-manifest" and manifest["version"] == 1
    assert manifest["card"]["path"] == "kpmodel.toml"
    assert sorted(manifest["files"]) == ["LICENSE", "model.safetensors"]  # not model.sig
    assert base64.b64decode(env["payload"]) == canonical_json(build_manifest(load_card(card)))
    result = verify_card(card, [keys["vendor_pub"]])
    assert result.ok, result.reason
    assert result.covered == ("kpmodel.toml", "LICENSE", "model.safetensors")
    assert result.key_id == key_id(load_public_key(keys["vendor_pub"]))
    (card.parent / "LICENSE").write_text("GPL-3.0\n")
    bad = verify_card(card, [keys["vendor_pub"]])
    assert not bad.ok and "LICENSE changed after signing" in bad.reason


def test_sign_inserts_under_existing_provenance_header(unsigned, keys, tmp_path):
    card = copy_model(unsigned, tmp_path / "m")
    text = card.read_text().replace(
        "[model]", '[provenance]  # where it came from\nsource = "https://x/y"\n\n[model]'
    )
    card.write_text(text)
    sign_card(card, keys["vendor"])
    assert card.read_text() == text.replace(
        "[provenance]  # where it came from\n",
        '[provenance]  # where it came from\nsignature = "model.sig"\n',
    )
    c = load_card(card)
    assert c.provenance.source == "https://x/y"
    assert c.provenance.signature == card.parent / "model.sig"


def test_sign_keeps_a_named_signature_path(unsigned, keys, tmp_path):
    card = copy_model(unsigned, tmp_path / "m")
    card.write_text(card.read_text() + '\n[provenance]\nsignature = "vendor.sig"\n')
    text = card.read_text()
    assert sign_card(card, keys["vendor"]) == card.parent / "vendor.sig"
    assert card.read_text() == text  # untouched


def test_sign_refuses_to_overwrite_without_force(unsigned, keys, tmp_path):
    card = copy_model(unsigned, tmp_path / "m")
    sig = sign_card(card, keys["vendor"])
    first = sig.read_bytes()
    text = card.read_text()
    with pytest.raises(SigningError, match="a signature already exists; pass --force"):
        sign_card(card, keys["other"])
    assert sig.read_bytes() == first and card.read_text() == text
    sign_card(card, keys["other"], force=True)
    assert sig.read_bytes() != first


def test_sign_refuses_when_the_edit_would_not_parse(unsigned, keys, tmp_path):
    card = copy_model(unsigned, tmp_path / "m")
    text = card.read_text().replace("schema = 1", 'schema = 1\nprovenance = { source = "x" }')
    card.write_text(text)
    with pytest.raises(SigningError, match='add `signature = "model.sig"` under'):
        sign_card(card, keys["vendor"])
    assert card.read_text() == text
    assert not (card.parent / "model.sig").exists()


def test_sign_refuses_a_signature_path_naming_the_weights(unsigned, keys, tmp_path):
    card = copy_model(unsigned, tmp_path / "m")
    card.write_text(card.read_text() + '\n[provenance]\nsignature = "model.safetensors"\n')
    weights = (card.parent / "model.safetensors").read_bytes()
    with pytest.raises(SigningError, match=r"is \[model.weights\]; name a file of its own"):
        sign_card(card, keys["vendor"], force=True)
    assert (card.parent / "model.safetensors").read_bytes() == weights


def test_sign_refuses_symlinked_weights_and_public_keys(unsigned, keys, tmp_path):
    card = copy_model(unsigned, tmp_path / "m")
    w = card.parent / "model.safetensors"
    w.rename(tmp_path / "w")
    w.symlink_to(tmp_path / "w")
    with pytest.raises(SigningError, match="symlink"):
        sign_card(card, keys["vendor"])
    with pytest.raises(SigningError, match="this is a public key"):
        sign_card(card, keys["vendor_pub"])


def test_verify_rejects_private_key_as_trusted(unsigned, keys, tmp_path):
    card = copy_model(unsigned, tmp_path / "m")
    sign_card(card, keys["vendor"])
    with pytest.raises(SigningError, match="holds a private key"):
        verify_card(card, [keys["vendor"]])
    with pytest.raises(SigningError, match="no trusted public key"):
        verify_card(card, [])


def test_openssh_public_key_is_accepted(unsigned, keys, tmp_path):
    from cryptography.hazmat.primitives import serialization

    card = copy_model(unsigned, tmp_path / "m")
    sign_card(card, keys["vendor"])
    ssh = load_public_key(keys["vendor_pub"]).public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    (tmp_path / "vendor_ssh.pub").write_bytes(ssh + b" vendor@example\n")
    assert verify_card(card, [tmp_path / "vendor_ssh.pub"]).ok
    assert verify_card(card, [ssh]).ok  # key bytes work too


def test_keygen_files_and_no_overwrite(tmp_path):
    private, public = generate_keypair(tmp_path / "k")
    assert public.name == "k.pub"
    assert private.stat().st_mode & 0o777 == 0o600
    with pytest.raises(SigningError, match="already exists; pass --force"):
        generate_keypair(tmp_path / "k")
    generate_keypair(tmp_path / "k", force=True)


def test_demo_key_pair_matches():
    from pytest_kpmodel.provenance.keys import load_private_key

    keys = Path(__file__).parents[2] / "example_suite" / "keys"
    private = load_private_key(keys / "DEMO-ONLY-vendor-key")
    public = load_public_key(keys / "DEMO-ONLY-vendor-key.pub")
    assert key_id(private.public_key()) == key_id(public)


def test_sign_keeps_crlf_line_endings(unsigned, keys, tmp_path):
    card = copy_model(unsigned, tmp_path / "m")
    crlf = card.read_bytes().replace(b"\n", b"\r\n")
    card.write_bytes(crlf + b'[provenance]\r\nsource = "https://x/y"\r\n')
    sign_card(card, keys["vendor"])
    data = card.read_bytes()
    assert b'[provenance]\r\nsignature = "model.sig"\r\nsource' in data
    assert b"\n" not in data.replace(b"\r\n", b"")
    assert verify_card(card, keys["vendor_pub"]).ok
