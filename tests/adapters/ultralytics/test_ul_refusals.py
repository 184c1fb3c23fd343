"""What the ``ultralytics`` format refuses, and how it says so."""

from __future__ import annotations

import pytest
import torch
from ul_cases import DATA, MODELS, card, load_checkpoint, save_as_ultralytics

from pytest_kpmodel.adapters import load_model
from pytest_kpmodel.adapters.options import LoadOptions
from pytest_kpmodel.adapters.ultralytics import blocks
from pytest_kpmodel.adapters.ultralytics.allowlist import ENTRIES
from pytest_kpmodel.card import load_card
from pytest_kpmodel.cli import main as cli
from pytest_kpmodel.errors import AdapterError, CardError, KpModelError, RefusedToLoad
from pytest_kpmodel.security import scan_path
from pytest_kpmodel.security.allowlist import DEFAULT_ALLOWLIST
from pytest_kpmodel.security.policy import SecurityPolicy

V8 = DATA / "yolov8-pose-tiny.pt"


class C2fAttn(blocks.C2f):
    """A class of another YOLO family, not on the reviewed list."""


def _outside_default(report) -> set[str]:
    return {g for g in report.globals if tuple(g.rsplit(".", 1)) not in DEFAULT_ALLOWLIST}


@pytest.mark.parametrize("name", MODELS)
def test_without_opt_in_every_class_is_named(name):
    report = scan_path(DATA / f"{name}.pt")
    assert report.verdict == "unsafe"
    named = {
        f.details["name"] for f in report.failures if f.details.get("code") == "disallowed-global"
    }
    assert named == _outside_default(report)
    assert {"ultralytics.nn.tasks.PoseModel", "ultralytics.nn.modules.head.Pose"} <= named
    refusal = report.refusal()
    assert all(n in refusal for n in named)
    hint = [f for f in report.findings if f.details.get("code") == "profile-hint"]
    assert len(hint) == 1 and 'allowlist = "ultralytics"' in hint[0].message


@pytest.mark.parametrize("name", MODELS)
def test_with_opt_in_the_shipped_list_covers_the_file(name):
    report = scan_path(DATA / f"{name}.pt", allowlists=["ultralytics"])
    assert report.verdict == "clean", report.refusal()
    listed = {e.full for e in ENTRIES}
    assert _outside_default(report) <= listed
    # saved after an eval forward, as trained ones are: the head's cached torch.Size shape
    assert "torch.Size" in report.globals


@pytest.mark.parametrize(
    "payload, ok",
    [
        (b"\x80\x02ctorch\nSize\nK\x01K\x02\x86\x85R.", True),  # torch.Size((1, 2))
        (b"\x80\x02ctorch\nSize\nX\x01\x00\x00\x00a\x85\x85R.", False),  # Size(("a",))
        (b"\x80\x02c__builtin__\nset\n]q\x00(X\x01\x00\x00\x00ae\x85R.", True),
        (b"\x80\x02c__builtin__\nset\n]q\x00(]e\x85R.", False),  # set([[]])
        (b"\x80\x02cultralytics.nn.modules.conv\nConv\nK\x01\x85R.", False),  # Conv(1)
    ],
)
def test_profile_calls_are_checked(payload, ok):
    from pytest_kpmodel.security import scan_bytes

    names = {"torch.Size", "builtins.set", "ultralytics.nn.modules.conv.Conv"}

    def about_the_call(report):  # (a bare pickle has other findings: not a torch.save file)
        return [f for f in report.failures if f.details.get("name") in names]

    assert (not about_the_call(scan_bytes(payload, allowlists=["ultralytics"]))) is ok
    assert about_the_call(scan_bytes(payload))  # never without the opt-in


def test_card_without_opt_in_is_refused_naming_the_classes(tmp_path):
    path = card(tmp_path, V8, allowlist=False)
    with pytest.raises(RefusedToLoad, match=r"ultralytics\.nn\.modules\.block\.C2f.*not on the"):
        load_model(load_card(path), LoadOptions())


def test_marker_opt_in_reaches_the_adapter(tmp_path):
    path = card(tmp_path, V8, allowlist=False)
    model = load_model(load_card(path), LoadOptions(allowlists=("ultralytics",)))
    assert model.num_keypoints == 17


def test_one_foreign_class_is_refused_before_anything_is_loaded(tmp_path, monkeypatch):
    checkpoint = load_checkpoint(V8)
    layers = checkpoint["model"].model
    index = next(i for i, m in enumerate(layers) if type(m) is blocks.C2f)
    layers[index].__class__ = C2fAttn
    crafted = tmp_path / "crafted" / "kp.pt"
    crafted.parent.mkdir()
    save_as_ultralytics(checkpoint, crafted, {C2fAttn: "ultralytics.nn.modules.block.C2fAttn"})

    report = scan_path(crafted, allowlists=["ultralytics"])
    assert [f.details.get("name") for f in report.failures] == [
        "ultralytics.nn.modules.block.C2fAttn"
    ]
    calls = []
    monkeypatch.setattr(torch, "load", lambda *a, **k: calls.append(a) or {})
    path = card(tmp_path / "crafted", crafted)
    with pytest.raises(RefusedToLoad, match=r"imports ultralytics\.nn\.modules\.block\.C2fAttn"):
        load_model(load_card(path), LoadOptions())
    assert calls == []  # refused by the scan: torch.load never ran


def test_a_stored_attribute_may_not_replace_forward(tmp_path):
    checkpoint = load_checkpoint(V8)
    checkpoint["model"].model[0].__dict__["forward"] = 3
    crafted = tmp_path / "m" / "kp.pt"
    crafted.parent.mkdir()
    save_as_ultralytics(checkpoint, crafted)
    with pytest.raises(AdapterError, match=r"model\.model\.0 stores an attribute 'forward'"):
        load_model(load_card(card(tmp_path / "m", crafted)), LoadOptions())


def test_malformed_attribute_is_named(tmp_path):
    checkpoint = load_checkpoint(V8)
    head = checkpoint["model"].model[-1]
    head.__dict__["reg_max"] = "16"
    crafted = tmp_path / "m" / "kp.pt"
    crafted.parent.mkdir()
    save_as_ultralytics(checkpoint, crafted)
    with pytest.raises(AdapterError, match=r"head\.Pose\)\.reg_max is a str, expected int"):
        load_model(load_card(card(tmp_path / "m", crafted)), LoadOptions())


def test_not_a_checkpoint_dict(tmp_path):
    crafted = tmp_path / "m" / "kp.pt"
    crafted.parent.mkdir()
    torch.save({"model": None, "epoch": 1}, crafted)
    with pytest.raises(AdapterError, match="not an Ultralytics checkpoint"):
        load_model(load_card(card(tmp_path / "m", crafted)), LoadOptions())


def test_kpt_shape_must_match_the_card(tmp_path):
    path = card(tmp_path, V8, extra='[keypoints]\npreset = "crowdpose14"\n')
    with pytest.raises(AdapterError) as err:
        load_model(load_card(path), LoadOptions())
    message = str(err.value)
    assert "kpt_shape [17, 3] has 17 keypoints" in message
    assert "14 keypoints (preset crowdpose14)" in message


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"img_size": 64}, r"unknown key 'img_size'.*allowed: imgsz, letterbox"),
        ({"imgsz": 0}, "imgsz must be a positive integer"),
        ({"imgsz": "96"}, "imgsz must be a positive integer"),
        ({"letterbox": "stretch"}, "letterbox must be one of val, predict, square"),
        ({"conf": 1.5}, r"conf must be a number in \[0, 1\]"),
        ({"iou": True}, r"iou must be a number in \[0, 1\]"),
        ({"max_det": 0}, "max_det must be a positive integer"),
    ],
)
def test_bad_kwargs(tmp_path, kwargs, match):
    path = card(tmp_path, V8, kwargs=kwargs)
    with pytest.raises(AdapterError, match=r"\[model.kwargs\] " + match):
        load_model(load_card(path), LoadOptions())


def test_imgsz_is_rounded_up_to_the_stride(tmp_path):
    model = load_model(load_card(card(tmp_path, V8, kwargs={"imgsz": 100})), LoadOptions())
    assert model.config["imgsz"] == 128


def test_unknown_allowlist_in_card_and_marker(tmp_path):
    path = card(tmp_path, V8, allowlist=False, model_extra='allowlist = "yolo"')
    with pytest.raises(CardError, match=r"\[model.allowlist\] unknown allow-list 'yolo'"):
        load_card(path)
    with pytest.raises(KpModelError, match=r"allowlist=\['yolo'\]\): unknown allow-list"):
        SecurityPolicy.from_marker((), {"allowlist": ["yolo"]})
    with pytest.raises(KpModelError, match="takes a list of allow-list names"):
        SecurityPolicy.from_marker((), {"allowlist": "ultralytics"})


def test_output_layout_only_for_onnx(tmp_path):
    path = card(tmp_path, V8, model_extra='output_layout = "yolo-pose"')
    with pytest.raises(CardError, match="applies to format 'onnx' only"):
        load_card(path)


def test_scan_cli_allowlist(capsys):
    assert cli(["scan", str(V8)]) == 1
    out = capsys.readouterr().out
    assert "ultralytics.nn.tasks.PoseModel" in out and "UNSAFE" in out
    assert cli(["scan", "--allowlist", "ultralytics", str(V8)]) == 0
    assert "CLEAN" in capsys.readouterr().out
    assert cli(["scan", "--allowlist", "nope", str(V8)]) == 2
    capsys.readouterr()
    assert cli(["scan", "--show-allowlist", "--allowlist", "ultralytics"]) == 0
    shown = capsys.readouterr().out
    assert "ultralytics.nn.modules.head.Pose  [module]" in shown and "torch.Size  [call]" in shown
