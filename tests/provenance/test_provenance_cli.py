"""kpmodel keygen | sign | verify | card init | diff: exit codes 0 / 1 / 2 and their output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from prov_helpers import copy_model

from kp_factories import make_model, tiny_module
from pytest_kpmodel.card import load_card
from pytest_kpmodel.cli import main
from pytest_kpmodel.provenance_cli import detect_format, guess_architecture


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


@pytest.mark.parametrize("fmt", ["safetensors", "pytorch"])
def test_card_init_state_dicts(fmt, tmp_path, capsys):
    import torch
    from safetensors.torch import save_file

    sd = tiny_module(seed=0).state_dict()
    ckpt = tmp_path / ("w.safetensors" if fmt == "safetensors" else "w.pt")
    if fmt == "safetensors":
        save_file({k: v.contiguous() for k, v in sd.items()}, str(ckpt))
    else:
        torch.save(sd, ckpt)
    assert main(["card", "init", str(ckpt), "--name", "vendor-kp"]) == 0
    card_path = tmp_path / "kpmodel.toml"
    assert f"wrote {card_path}" in capsys.readouterr().out
    card = load_card(card_path)
    assert card.model.format == fmt
    assert card.model.name == "vendor-kp"
    assert card.model.weights == ckpt
    from pytest_kpmodel.digests import sha256_file

    assert card.model.sha256 == sha256_file(ckpt)
    assert card.model.architecture == "pytest_kpmodel.zoo:keypointrcnn_compact"
    text = card_path.read_text()
    assert "TODO" in text and "COCO-17" in text
    if fmt == "safetensors":  # shapes are readable without unpickling
        assert card.model.kwargs == {
            "backbone": "resnet18", "num_classes": 2, "num_keypoints": 17, "fpn_channels": 16,
            "box_head_dim": 32, "keypoint_head_depth": 1, "keypoint_head_channels": 16,
        }  # fmt: skip
    # never overwrite without --force
    assert main(["card", "init", str(ckpt)]) == 2
    assert "already exists; pass --force" in capsys.readouterr().err
    assert main(["card", "init", str(ckpt), "--force"]) == 0


@pytest.mark.filterwarnings("ignore:`torch.jit:FutureWarning")
def test_card_init_torchscript_export_and_pickled_module(tmp_path):
    import torch

    lin = torch.nn.Sequential(torch.nn.Linear(3, 4))
    torch.jit.script(lin).save(str(tmp_path / "ts.pt"))
    torch.export.save(torch.export.export(lin, (torch.rand(2, 3),)), str(tmp_path / "ex.pt2"))
    torch.save(lin, tmp_path / "full.pt")
    assert detect_format(tmp_path / "ts.pt").format == "torchscript"
    ex = detect_format(tmp_path / "ex.pt2")
    assert ex.format == "exported" and ex.tensors == {"0.weight": (4, 3), "0.bias": (4,)}
    full = detect_format(tmp_path / "full.pt")
    assert full.format == "pytorch"
    assert "torch.nn.modules.linear.Linear" in full.warnings[0]
    assert detect_format(tmp_path / "ts.pt").warnings == []
    for name in ("ts.pt", "ex.pt2", "full.pt"):
        folder = tmp_path / name.replace(".", "_")
        folder.mkdir()
        (folder / name).write_bytes((tmp_path / name).read_bytes())
        assert main(["card", "init", str(folder / name)]) == 0
        card = load_card(folder / "kpmodel.toml", check_files=False)
        assert card.model.format == detect_format(folder / name).format


def test_card_init_onnx_and_unknown(tmp_path, capsys):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )
    onnx.save(helper.make_model(graph), str(tmp_path / "m.onnx"))
    assert detect_format(tmp_path / "m.onnx").format == "onnx"
    (tmp_path / "junk.bin").write_bytes(b"\x00\x01garbage" * 10)
    assert main(["card", "init", str(tmp_path / "junk.bin")]) == 2
    assert "cannot tell the format by content" in capsys.readouterr().err


def test_guess_architecture_for_torchvision_layout():
    names = {f"roi_heads.keypoint_head.{i}.weight": None for i in range(0, 16, 2)}
    names.update({
        "backbone.body.layer4.0.conv3.weight": None,
        "roi_heads.keypoint_predictor.kps_score_lowres.weight": (512, 17, 4, 4),
        "roi_heads.box_predictor.cls_score.weight": (2, 1024),
    })  # fmt: skip
    g = guess_architecture(names)
    assert g.architecture == "torchvision:keypointrcnn_resnet50_fpn" and g.confident
    assert g.kwargs == {"num_classes": 2, "num_keypoints": 17}
    assert guess_architecture({"fc.weight": (2, 3)}).architecture is None


def test_card_init_unknown_state_dict_still_parses(tmp_path):
    import torch
    from safetensors.torch import save_file

    save_file({"fc.weight": torch.zeros(2, 3)}, str(tmp_path / "w.safetensors"))
    assert main(["card", "init", str(tmp_path / "w.safetensors")]) == 0
    card = load_card(tmp_path / "kpmodel.toml")
    assert card.model.architecture == "TODO_replace_me.module:factory"


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
