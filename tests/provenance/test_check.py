"""kp_provenance: each tampering fails (or reports) with a precise message."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from prov_helpers import DATA, SOURCE, copy_model, repin

from pytest_kpmodel.card import load_card
from pytest_kpmodel.errors import KpModelError
from pytest_kpmodel.provenance.check import check_provenance, source_matches, unexpected_files
from pytest_kpmodel.provenance.signing import sign_card
from pytest_kpmodel.provenance.verify import verify_card


def check(card: Path, keys, **kwargs):
    kwargs.setdefault("trusted_keys", [keys["vendor_pub"]])
    return check_provenance(card, **kwargs)


def failures(result, check_name: str) -> list[str]:
    return [f.message for f in result.findings if f.check == check_name and f.severity == "fail"]


def test_untouched_signed_model_passes(signed_card, keys, base_card):
    result = check(
        signed_card, keys, sources=["https://models.example.org/*"], base=base_card, files="exact"
    )
    assert result.passed, result.failures
    assert result.check == "kp_provenance"
    (sig,) = [f for f in result.findings if f.check == "provenance.signature"]
    assert sig.severity == "info"
    assert "signed by trusted key" in sig.message
    assert sig.details["covered"] == ["kpmodel.toml", "model.safetensors"]


def test_one_byte_flipped_in_weights(signed_card, keys, tmp_path):
    card = copy_model(signed_card, tmp_path / "m")
    weights = card.parent / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0x01
    weights.write_bytes(bytes(data))
    result = check(card, keys)
    assert not result.passed
    (sha,) = failures(result, "provenance.sha256")
    assert "does not match the card's [model.sha256]" in sha
    (sig,) = failures(result, "provenance.signature")
    assert "model.safetensors changed after signing" in sig
    assert "valid signature by trusted key" in sig


def test_card_edited_after_signing(signed_card, keys, tmp_path):
    card = copy_model(signed_card, tmp_path / "m")
    card.write_text(card.read_text().replace('version = "0.1"', 'version = "0.2"'))
    result = check(card, keys)
    assert failures(result, "provenance.sha256") == []
    (sig,) = failures(result, "provenance.signature")
    assert "the card kpmodel.toml changed after signing" in sig
    assert "model.safetensors" not in sig


def test_weights_swapped_for_the_base_models(signed_card, base_card, keys, tmp_path):
    card = copy_model(signed_card, tmp_path / "m")
    shutil.copyfile(base_card.parent / "model.safetensors", card.parent / "model.safetensors")
    result = check(card, keys, base=base_card)
    assert "does not match" in failures(result, "provenance.sha256")[0]
    assert "model.safetensors changed after signing" in failures(result, "provenance.signature")[0]
    (same,) = [f for f in result.findings if f.check == "provenance.base"]
    assert same.severity == "warn"
    assert "byte-identical to the base model's weights" in same.message


def test_resigned_card_with_swapped_weights(signed_card, base_card, keys, tmp_path):
    """A forger swaps the weights, re-pins the digest and re-signs with their own key."""
    card = copy_model(signed_card, tmp_path / "m")
    shutil.copyfile(base_card.parent / "model.safetensors", card.parent / "model.safetensors")
    repin(card)
    sign_card(card, keys["other"], force=True)
    result = check(card, keys)
    assert failures(result, "provenance.sha256") == []  # the forger re-pinned it
    (sig,) = failures(result, "provenance.signature")
    assert "signed by an untrusted key" in sig


def test_signature_from_another_key(signed_card, keys, tmp_path):
    card = copy_model(signed_card, tmp_path / "m")
    sign_card(card, keys["other"], force=True)
    (sig,) = failures(check(card, keys), "provenance.signature")
    other_id = verify_card(card, [keys["other_pub"]]).key_id
    assert f"signed by an untrusted key (key id {other_id[:16]})" in sig
    # ...and with both keys trusted it verifies, naming the key that did
    ok = verify_card(card, [keys["vendor_pub"], keys["other_pub"]])
    assert ok.ok and ok.key_id == other_id


def test_valid_signature_over_other_weights(signed_card, base_card, keys, tmp_path):
    """The base model's genuine signature, dropped beside this model's files."""
    card = copy_model(signed_card, tmp_path / "m")
    shutil.copyfile(base_card.parent / "model.sig", card.parent / "model.sig")
    (sig,) = failures(check(card, keys), "provenance.signature")
    assert "valid signature by trusted key" in sig
    assert "the card kpmodel.toml changed after signing" in sig
    assert "model.safetensors changed after signing" in sig


@pytest.mark.parametrize("cut", ["file", "sig-bytes"])
def test_truncated_signature(signed_card, keys, tmp_path, cut):
    card = copy_model(signed_card, tmp_path / "m")
    sig_path = card.parent / "model.sig"
    if cut == "file":
        raw = sig_path.read_bytes()
        sig_path.write_bytes(raw[: len(raw) // 2])
        expected = "truncated or corrupt signature file"
    else:
        env = json.loads(sig_path.read_text())
        env["signatures"][0]["sig"] = env["signatures"][0]["sig"][:-8]
        sig_path.write_text(json.dumps(env))
        expected = "does not verify with trusted key"
    (sig,) = failures(check(card, keys), "provenance.signature")
    assert expected in sig


def test_symlink_planted_for_the_weights(signed_card, keys, tmp_path):
    """Identical bytes, so digests and signature pass; the link itself fails."""
    card = copy_model(signed_card, tmp_path / "m")
    weights = card.parent / "model.safetensors"
    elsewhere = tmp_path / "elsewhere.safetensors"
    shutil.move(weights, elsewhere)
    weights.symlink_to(elsewhere)
    result = check(card, keys)
    assert failures(result, "provenance.sha256") == []
    assert failures(result, "provenance.signature") == []
    msgs = failures(result, "provenance.files")
    assert any("'model.safetensors' named by [model.weights] is a symlink" in m for m in msgs)
    assert any("outside the card's folder" in m for m in msgs)


def test_symlinked_parent_folder(signed_card, keys, tmp_path):
    card = copy_model(signed_card, tmp_path / "m")
    real = card.parent / "real"
    real.mkdir()
    shutil.move(card.parent / "model.safetensors", real / "model.safetensors")
    (card.parent / "sub").symlink_to(real, target_is_directory=True)
    card.write_text(card.read_text().replace('weights = "model.safetensors"',
                                             'weights = "sub/model.safetensors"'))  # fmt: skip
    (msg,) = failures(check(card, keys, signature=False), "provenance.files")
    assert "'sub/model.safetensors' named by [model.weights] passes through symlink" in msg


def test_named_file_missing_or_a_folder(signed_card, keys, tmp_path):
    card = copy_model(signed_card, tmp_path / "m")
    (card.parent / "model.sig").unlink()
    (card.parent / "model.safetensors").unlink()
    (card.parent / "model.safetensors").mkdir()
    result = check(card, keys)
    files = failures(result, "provenance.files")
    assert any("'model.sig' named by [provenance.signature] is missing" in m for m in files)
    assert any("named by [model.weights] is not a regular file" in m for m in files)
    (sig,) = failures(result, "provenance.signature")
    assert sig.startswith("unsigned: the signature file") and "is missing" in sig


def test_extra_file_with_files_exact(signed_card, keys, tmp_path):
    card = copy_model(signed_card, tmp_path / "m")
    (card.parent / "notes.txt").write_text("hi")
    (card.parent / "extra").mkdir()
    (card.parent / "extra" / "payload.py").write_text("")
    assert check(card, keys).passed  # files="named" ignores them
    (msg,) = failures(check(card, keys, files="exact"), "provenance.files")
    assert "2 unexpected file(s)" in msg
    assert "extra/payload.py, notes.txt" in msg
    assert unexpected_files(load_card(card)) == ["extra/payload.py", "notes.txt"]
    with pytest.raises(KpModelError, match="files='all'"):
        check(card, keys, files="all")


def test_source_not_matching(signed_card, keys):
    result = check(signed_card, keys, sources=["https://trusted.example.com/*"])
    (msg,) = failures(result, "provenance.source")
    assert msg == (
        f"source {SOURCE!r} matches none of the allowed sources 'https://trusted.example.com/*'"
    )
    assert check(signed_card, keys, sources="https://models.example.org/tiny/*").passed


def test_card_without_source_fails_when_sources_required(tmp_path, keys):
    from kp_factories import make_model

    card = make_model(tmp_path / "m")
    (msg,) = failures(
        check(card, keys, signature=False, sources=["https://*"]), "provenance.source"
    )
    assert "names no [provenance] source" in msg


@pytest.mark.parametrize(
    ("source", "pattern", "ok"),
    [
        ("https://models.example.org/a/1.0", "https://models.example.org/*", True),
        ("https://models.example.org.evil.com/a", "https://models.example.org/*", False),
        ("https://evil.com/x.example.org/a", "https://*.example.org/*", False),
        ("https://cdn.example.org/a", "https://*.example.org/*", True),
        ("https://models.example.org@evil.com/a", "https://models.example.org*", False),
        ("https://user@models.example.org/a", "https://models.example.org/*", False),
        ("http://models.example.org/a", "https://models.example.org/*", False),
        ("https://MODELS.example.org/a", "https://models.example.org/*", True),
        ("hf://org/model", "hf://org/*", True),
        ("vendor-drop-42", "vendor-drop-*", True),
    ],
)
def test_source_patterns(source, pattern, ok):
    assert source_matches(source, pattern) is ok


def test_unsigned_is_info_without_signature_requirement(tmp_path, keys):
    from kp_factories import make_model

    card = make_model(tmp_path / "m")
    result = check_provenance(card, signature=False)
    assert result.passed
    (f,) = result.findings
    assert (f.check, f.severity) == ("provenance.signature", "info")
    assert f.message.startswith("unsigned:")
    required = check_provenance(card, signature=True, trusted_keys=[keys["vendor_pub"]])
    (msg,) = failures(required, "provenance.signature")
    assert "unsigned" in msg and "requires one (`kpmodel sign`)" in msg


def test_signature_required_without_trusted_keys(signed_card):
    (msg,) = failures(check_provenance(signed_card), "provenance.signature")
    assert "needs trusted_keys=[...]" in msg


def test_bad_signature_only_warns_when_not_required(signed_card, keys, tmp_path):
    card = copy_model(signed_card, tmp_path / "m")
    sign_card(card, keys["other"], force=True)
    result = check(card, keys, signature=False)
    assert result.passed
    (f,) = [f for f in result.findings if f.check == "provenance.signature"]
    assert f.severity == "warn" and "untrusted key" in f.message


def test_unreadable_trusted_key_is_a_finding(signed_card, tmp_path):
    result = check_provenance(signed_card, trusted_keys=[tmp_path / "nope.pub"])
    (msg,) = failures(result, "provenance.signature")
    assert "nope.pub: key file not found" in msg


def test_relative_trusted_keys_resolve_against_root(signed_card, keys):
    root = keys["vendor_pub"].parent
    result = check_provenance(signed_card, trusted_keys=["vendor.pub"], root=root)
    assert result.passed, result.failures


def test_missing_pinned_digest(tmp_path, keys):
    from kp_factories import make_model

    card = make_model(tmp_path / "m")
    card.write_text("\n".join(x for x in card.read_text().splitlines() if "sha256" not in x))
    (msg,) = failures(check(card, keys, signature=False), "provenance.sha256")
    assert "pins no [model.sha256]" in msg


def test_base_same_file_copy_or_other(signed_card, base_card, keys, tmp_path):
    assert check(signed_card, keys, base=base_card.parent).passed  # a folder works too
    # the spec's base is a copy of the same base model elsewhere: same pinned digest
    copy = copy_model(base_card, tmp_path / "copy")
    assert check(signed_card, keys, base=copy).passed
    # a different base model
    from kp_factories import make_model

    other = make_model(tmp_path / "other", seed=7)
    (msg,) = failures(check(signed_card, keys, base=other), "provenance.base")
    assert f"is not the spec's base {other}" in msg
    # a card that names no base
    plain = make_model(tmp_path / "plain", seed=3)
    (msg,) = failures(check(plain, keys, signature=False, base=base_card), "provenance.base")
    assert "names no [provenance] base" in msg


def test_model_signing_bundle_verifies_offline(tmp_path):
    """A signature made by OpenSSF model-signing (EC key) verifies without the library."""
    key = DATA / "ms_demo_ec.pub"
    result = check_provenance(DATA / "ms_model", trusted_keys=[key], files="exact")
    assert result.passed, result.failures
    (f,) = result.findings
    assert "signed (model-signing) by trusted key" in f.message
    card = copy_model(DATA / "ms_model" / "kpmodel.toml", tmp_path / "ms")
    (card.parent / "w.onnx").write_bytes(b"tampered")
    (msg,) = failures(check_provenance(card, trusted_keys=[key]), "provenance.signature")
    assert "w.onnx changed after signing" in msg


def test_digests_are_shared(signed_card, keys):
    digests: dict = {}
    check(signed_card, keys, digests=digests)
    assert signed_card.parent / "model.safetensors" in digests
    assert os.path.getsize(signed_card.parent / "model.safetensors") > 0


def test_marker_evaluator_uses_the_session(signed_card, keys):
    from pytest_kpmodel.provenance.marker import evaluate
    from pytest_kpmodel.session import KpSession
    from pytest_kpmodel.settings import Settings

    session = KpSession(Settings(model=signed_card))
    result = evaluate(
        session, trusted_keys=["vendor.pub"], sources=["https://models.example.org/*"],
        root=keys["vendor_pub"].parent,
    )  # fmt: skip
    assert result.passed, result.failures
    with pytest.raises(KpModelError, match="unknown argument"):
        evaluate(session, sha265=True)
    with pytest.raises(KpModelError, match="keyword arguments only"):
        evaluate(session, True)
