"""kpmodel card init: the format as the security scanner tells it, the architecture guess, and a
starter card that always parses."""

from __future__ import annotations

import pytest

from kp_factories import tiny_module
from pytest_kpmodel.card import load_card
from pytest_kpmodel.cli import main
from pytest_kpmodel.provenance.architecture import guess_architecture
from pytest_kpmodel.provenance.card_init import detect_format


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
    from pytest_kpmodel.provenance.digests import sha256_file

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
