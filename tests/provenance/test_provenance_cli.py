"""kpmodel keygen | sign | verify | card init | diff: exit codes 0 / 1 / 2 and their output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from prov_helpers import copy_model

from kp_factories import make_model
from pytest_kpmodel.cli import main


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    return make_model(tmp_path_factory.mktemp("cli") / "m", seed=4)


def test_keygen_sign_verify_roundtrip(model, tmp_path, capsys):
    card = copy_model(model, tmp_path / "m")
    assert main(["keygen", str(tmp_path / "k")]) == 0
    assert main(["keygen", str(tmp_path / "k")]) == 2
    assert "already exists; pass --force" in capsys.readouterr().err
    assert main(["sign", str(card.parent), "--key", str(tmp_path / "k")]) == 0
    assert f"-> {card.parent / 'model.sig'}" in capsys.readouterr().out
    assert main(["verify", str(card), "--key", str(tmp_path / "k.pub")]) == 0
    out = capsys.readouterr().out
    assert "ok   provenance.signature: signed by trusted key" in out
    assert f"verified: {card}" in out
    # signing again: refused (2) unless --force
    assert main(["sign", str(card), "--key", str(tmp_path / "k")]) == 2
    assert "a signature already exists; pass --force" in capsys.readouterr().err
    assert main(["sign", str(card), "--key", str(tmp_path / "k"), "--force"]) == 0


def test_verify_failures_exit_1(model, keys, tmp_path, capsys):
    card = copy_model(model, tmp_path / "m")
    assert main(["sign", str(card), "--key", str(keys["vendor"])]) == 0
    capsys.readouterr()
    weights = card.parent / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-1] + b"\x00")
    (card.parent / "notes.txt").write_text("x")
    rc = main(
        ["verify", str(card), "--key", str(keys["other_pub"]), "--key", str(keys["vendor_pub"]),
         "--source", "https://trusted.example.com/*", "--exact"]
    )  # fmt: skip
    assert rc == 1
    captured = capsys.readouterr()
    assert "FAIL provenance.sha256:" in captured.out
    assert "FAIL provenance.signature:" in captured.out
    assert "model.safetensors changed after signing" in captured.out
    assert "FAIL provenance.files: 1 unexpected file(s)" in captured.out
    assert "FAIL provenance.source:" in captured.out
    assert "verification failed" in captured.err


def test_verify_unsigned_exits_1(model, keys, capsys):
    assert main(["verify", str(model), "--key", str(keys["vendor_pub"])]) == 1
    assert "FAIL provenance.signature: unsigned:" in capsys.readouterr().out


def test_usage_errors_exit_2(model, keys, tmp_path, capsys):
    assert main(["verify", str(model), "--key", str(tmp_path / "missing.pub")]) == 2
    assert "missing.pub: key file not found" in capsys.readouterr().err
    assert main(["verify", str(tmp_path / "nowhere"), "--key", str(keys["vendor_pub"])]) == 2
    assert "model card not found" in capsys.readouterr().err
    assert main(["verify", str(model)]) == 2  # --key is required
    assert main(["sign", str(model), "--key", str(tmp_path / "missing")]) == 2
    assert "private key not found" in capsys.readouterr().err
    assert main(["card", "init", str(tmp_path / "missing.pt")]) == 2
    assert main(["card"]) == 2


def test_diff_table_and_json(model, tmp_path, capsys):
    base = make_model(tmp_path / "base", seed=9)
    out = tmp_path / "diff.json"
    assert main(["diff", str(model), str(base), "--no-flops", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "component" in text and "backbone.body" in text and "most changed layers" in text
    data = json.loads(out.read_text())
    assert data["summary"]["changed"] > 0 and data["flops"]["model"] is None
    assert main(["diff", str(model), str(base), "--json", "-"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["flops"]["model"] > 0
    assert main(["diff", str(model), str(tmp_path / "nowhere")]) == 2


@pytest.mark.filterwarnings("ignore:`torch.jit:FutureWarning")
def test_diff_code_format_needs_allow_code(model, tmp_path, capsys):
    scripted = make_model(tmp_path / "ts", fmt="torchscript", seed=4)
    assert main(["diff", str(scripted), str(model), "--no-flops"]) == 2
    assert "allow_code=True" in capsys.readouterr().err
    assert main(["diff", str(scripted), str(model), "--no-flops", "--allow-code"]) == 0
    assert "0 added, 0 removed, 0 reshaped, 0 changed" in capsys.readouterr().out
