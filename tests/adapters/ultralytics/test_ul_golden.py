"""The plugin's ``ultralytics`` adapter and ``yolo-pose`` ONNX layout against predictions that
Ultralytics itself made on the committed checkpoints (no ultralytics needed here)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ul_cases import DATA, IMAGES, MODELS, NMS, card, golden

from pytest_kpmodel.adapters import load_model
from pytest_kpmodel.adapters.options import LoadOptions
from pytest_kpmodel.card import load_card
from pytest_kpmodel.data import decode_image

# The goldens store boxes to 1e-5 px, keypoints and scores to 1e-6, computed by Ultralytics in
# NCHW fp32. On the machine that wrote them the plugin agreed to rounding (2e-3 px, 2e-5); another
# CPU picks other fp32 kernels (AVX-512 against AVX2 in oneDNN), which moved keypoints by up to
# 2.2e-3 px and scores by 4e-5 on an AMD EPYC. The bounds leave 10x that, still 25x under the
# 0.5 px the comparison with Ultralytics asks for.
PX, SCORE = 2e-2, 5e-4


def predictions(model) -> dict[str, dict]:
    out = {}
    for name in IMAGES:
        pixels, err = decode_image(DATA / name)
        assert err is None
        p = model.predict([pixels.float() / 255])[0]
        out[name] = {"boxes": p.boxes, "scores": p.scores, "keypoints": p.keypoints}
    return out


def _pairing(ref: dict, ours: dict) -> list[int]:
    """For each reference detection, the index of ours that it is: the random-initialised tiny
    models score many boxes within 1e-4 of each other, so a kernel's rounding may swap their
    order; a detection is identified by its box and keypoints, not by its rank."""
    r = np.concatenate([np.asarray(ref["boxes"]), np.asarray(ref["keypoints"])[..., :2].reshape(len(ref["boxes"]), -1)], 1)  # fmt: skip
    o = np.concatenate([ours["boxes"].numpy(), ours["keypoints"][..., :2].numpy().reshape(len(ours["boxes"]), -1)], 1)  # fmt: skip
    distance = np.abs(r[:, None, :] - o[None, :, :]).max(-1)
    free, pairing = set(range(len(o))), []
    for i in range(len(r)):
        j = min(free, key=lambda j: distance[i, j])
        free.remove(j)
        pairing.append(j)
    return pairing


def assert_matches(ref: dict[str, dict], ours: dict[str, dict]) -> int:
    total = 0
    for name in IMAGES:
        r, o = ref[name], ours[name]
        assert len(o["scores"]) == len(r["scores"]), name
        total += len(r["scores"])
        if not r["scores"]:
            continue
        j = _pairing(r, o)
        np.testing.assert_allclose(o["scores"].numpy()[j], r["scores"], atol=SCORE, rtol=0)
        np.testing.assert_allclose(o["boxes"].numpy()[j], r["boxes"], atol=PX, rtol=0)
        rk = np.asarray(r["keypoints"])
        ok = o["keypoints"].numpy()[j]
        np.testing.assert_allclose(ok[..., :2], rk[..., :2], atol=PX, rtol=0)
        np.testing.assert_allclose(ok[..., 2], rk[..., 2], atol=SCORE, rtol=0)
    return total


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("mode", ["val", "predict"])
def test_eager_matches_ultralytics(tmp_path, name, mode):
    ref = golden(name)
    path = card(
        tmp_path, DATA / f"{name}.pt", kwargs={"imgsz": ref["imgsz"], "letterbox": mode, **NMS}
    )
    model = load_model(load_card(path), LoadOptions())
    assert assert_matches(ref[mode], predictions(model)) > 20  # the goldens are not empty


@pytest.mark.parametrize("name", MODELS)
def test_defaults_are_val_and_checkpoint_imgsz(tmp_path, name):
    """Without kwargs: imgsz from the checkpoint's train_args, val letterbox and thresholds."""
    model = load_model(load_card(card(tmp_path, DATA / f"{name}.pt")), LoadOptions())
    assert model.config == {"imgsz": 96, "letterbox": "val", **NMS}
    assert assert_matches(golden(name)["val"], predictions(model)) > 20


@pytest.mark.parametrize("name", MODELS)
def test_onnx_export_matches_ultralytics(tmp_path, name):
    pytest.importorskip("onnxruntime")
    path = card(
        tmp_path, DATA / f"{name}.onnx", fmt="onnx", model_extra='output_layout = "yolo-pose"'
    )
    model = load_model(load_card(path), LoadOptions())
    assert model.config["letterbox"] == "square" and model.config["imgsz"] == 96
    assert assert_matches(golden(name)["onnx"], predictions(model)) > 20


def test_labels_and_keypoint_scores(tmp_path):
    path = card(tmp_path, DATA / "yolo11-pose-tiny.pt")
    model = load_model(load_card(path), LoadOptions())
    pixels, _ = decode_image(DATA / IMAGES[0])
    p = model.predict([pixels.float() / 255])[0]
    assert p.labels.unique().tolist() == [1]  # class 0 -> COCO category 1 (person)
    assert p.keypoints.shape[1:] == (17, 3)
    assert float(p.keypoints[..., 2].min()) >= 0 and float(p.keypoints[..., 2].max()) <= 1
    h, w = pixels.shape[1:]
    assert float(p.boxes[:, 2].max()) <= w and float(p.boxes[:, 3].max()) <= h


def test_batch_equals_one_by_one(tmp_path):
    model = load_model(load_card(card(tmp_path, DATA / "yolov8-pose-tiny.pt")), LoadOptions())
    images = [decode_image(DATA / n)[0].float() / 255 for n in IMAGES] * 2
    together = model.predict(images)
    for image, p in zip(images, together, strict=True):
        alone = model.predict([image])[0]  # batched convolutions round a little differently
        torch.testing.assert_close(p.boxes, alone.boxes, atol=PX, rtol=0)
        torch.testing.assert_close(p.keypoints, alone.keypoints, atol=PX, rtol=0)
