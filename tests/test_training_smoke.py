"""tools/train.py: a few iterations on tiny synthetic images write a loadable model and card."""

from __future__ import annotations

import hashlib
import math

import pytest
from tool_modules import load_tool

TINY = ["--width", "96", "--height", "72", "--min-size", "72", "--max-size", "96",
        "--fpn-channels", "16", "--box-head-dim", "32", "--keypoint-head-channels", "16",
        "--batch-size", "2", "--num-images", "4", "--workers", "0", "--warmup", "2",
        "--log-every", "1", "--threads", "1"]  # fmt: skip
# One thread: on a shared 2-core machine two threads make tiny ops wait for each other (~50x).


@pytest.fixture(scope="module")
def train():
    return load_tool("train")


@pytest.fixture(scope="module")
def tiny_val(tmp_path_factory):
    synth = load_tool("synth_data")
    out = tmp_path_factory.mktemp("val")
    synth.write_dataset(out, num_images=2, seed=5, width=96, height=72)
    return out / "annotations.json"


@pytest.fixture(scope="module")
def trained(train, tiny_val, tmp_path_factory):
    out = tmp_path_factory.mktemp("models") / "kp-smoke"
    summary = train.main(["--out", str(out), "--iterations", "3", "--keypoint-head-depth", "2",
                          "--val", str(tiny_val), *TINY])  # fmt: skip
    return out, summary


def test_loss_is_finite(trained):
    _, summary = trained
    assert summary["final_losses"]["loss"] > 0
    assert all(math.isfinite(v) for v in summary["final_losses"].values())


def test_writes_loadable_safetensors_and_valid_card(trained):
    import torch
    from safetensors.torch import load_file

    from pytest_kpmodel.card import load_card
    from pytest_kpmodel.zoo import keypointrcnn_compact

    out, _ = trained
    card = load_card(out)
    assert card.model.format == "safetensors"
    assert card.model.architecture == "pytest_kpmodel.zoo:keypointrcnn_compact"
    assert card.model.name == "kp-smoke"
    assert card.model.sha256 == hashlib.sha256(card.model.weights.read_bytes()).hexdigest()
    assert card.license.spdx == "Apache-2.0" and card.license.file.is_file()
    assert card.provenance.signature is None
    assert set(card.claims) >= {"box_ap", "box_ap50", "kp_ap", "kp_ap50"}
    assert card.dataset.annotations is not None and card.dataset.annotations.is_file()
    state = load_file(str(card.model.weights))
    assert any(k.endswith("running_mean") for k in state), "BN running stats must be saved"
    model = keypointrcnn_compact(**card.model.kwargs)
    model.load_state_dict(state, strict=True)
    model.eval()
    with torch.inference_mode():
        (pred,) = model([torch.rand(3, 72, 96)])
    assert pred["keypoints"].shape[1:] == (17, 3)
    for name in ("loss.csv", "loss.png", "TRAINING.md", "LICENSE"):
        assert (out / name).is_file(), name


def test_fine_tune_with_other_head_depth_records_modifications(train, trained, tmp_path):
    from pytest_kpmodel.card import load_card

    base_dir, _ = trained
    out = tmp_path / "kp-smoke-mod"
    summary = train.main(["--out", str(out), "--iterations", "2", "--keypoint-head-depth", "1",
                          "--init-from", str(base_dir / "kpmodel.toml"), "--base",
                          str(base_dir / "kpmodel.toml"), "--low-light", "1.0", *TINY])  # fmt: skip
    card = load_card(out)
    assert card.provenance.base == (base_dir / "kpmodel.toml").resolve()
    mods = " | ".join(card.provenance.modifications)
    assert "keypoint head: 1 convs instead of 2" in mods
    assert "roi_heads.keypoint_head.2" in mods  # the dropped conv
    assert "low-light" in mods
    assert math.isfinite(summary["final_losses"]["loss"])


def test_hflip_swaps_left_and_right(train):
    import torch

    from pytest_kpmodel.keypoints import COCO17

    img = torch.rand(3, 10, 20)
    boxes = torch.tensor([[2.0, 3.0, 7.0, 9.0]])
    kp = torch.zeros(1, 17, 3)
    kp[0, 5] = torch.tensor([4.0, 5.0, 2.0])  # left_shoulder
    kp[0, 6] = torch.tensor([6.0, 5.0, 1.0])  # right_shoulder
    img2, boxes2, kp2 = train.hflip(img, boxes, kp, COCO17.flip_index())
    assert torch.equal(img2, img.flip(-1))
    assert boxes2.tolist() == [[13.0, 3.0, 18.0, 9.0]]
    assert kp2[0, 5].tolist() == [14.0, 5.0, 1.0]  # the old right shoulder, mirrored
    assert kp2[0, 6].tolist() == [16.0, 5.0, 2.0]
    assert kp2[0, 0].tolist() == [0.0, 0.0, 0.0]  # unlabelled stays x = y = 0
    img3, boxes3, kp3 = train.hflip(img2, boxes2, kp2, COCO17.flip_index())
    assert torch.equal(img3, img) and torch.equal(boxes3, boxes) and torch.equal(kp3, kp)


def test_low_light_darkens(train):
    import torch

    img = torch.full((3, 8, 8), 0.6)
    dark = train.low_light(img, torch.Generator().manual_seed(0))
    assert dark.shape == img.shape and dark.min() >= 0 and dark.max() <= 1
    assert dark.mean() < 0.4


def test_low_light_eval_scores_cards_on_darkened_images(trained, tiny_val, capsys):
    import torch

    from pytest_kpmodel.card import load_card

    low_light_eval = load_tool("low_light_eval")
    out, _ = trained
    card = load_card(out)
    torch.manual_seed(0)
    image = torch.rand(3, 72, 96)
    assert torch.equal(low_light_eval.darken(image, 7), low_light_eval.darken(image, 7))
    assert low_light_eval.darken(image, 7).mean() < image.mean()
    low_light_eval.main([str(out / "kpmodel.toml"), "--val", str(tiny_val)])
    table = capsys.readouterr().out.splitlines()
    assert table[0] == "| model | box AP | box AP50 | kp AP | kp AP50 |"
    row = table[2].split("|")
    assert row[1].strip() == card.model.name
    assert all(-1.0 <= float(v) <= 1.0 for v in row[2:6])
