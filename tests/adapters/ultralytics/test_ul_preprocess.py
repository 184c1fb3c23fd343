from __future__ import annotations

import numpy as np
import pytest
import torch

from pytest_kpmodel.adapters.ultralytics import preprocess
from pytest_kpmodel.adapters.ultralytics.postprocess import Detections, to_original


def test_val_pads_half_a_stride_around_the_image():
    box = preprocess.plan((288, 384), 384, 32, "val")
    assert box.input_hw == (320, 416)  # ceil(0.75*12 + 0.5)*32, ceil(12 + 0.5)*32
    assert (box.top, box.left, box.gain_yx, box.pad_xy) == (16, 16, (1.0, 1.0), (16.0, 16.0))
    assert box.stages == ((288, 384), (288, 384))


def test_val_resizes_the_long_side_with_ceil():
    box = preprocess.plan((480, 641), 384, 32, "val")
    assert box.stages[0] == (288, 384)  # ceil(480 * 384/641) = 288, long side capped at imgsz
    assert box.gain_yx == (288 / 480, 384 / 641)  # per axis, as Ultralytics' ratio_pad
    assert box.input_hw == (320, 416)


def test_predict_pads_to_the_stride_only():
    assert preprocess.plan((288, 384), 384, 32, "predict").input_hw == (288, 384)
    box = preprocess.plan((200, 300), 384, 32, "predict")
    assert box.resized_hw == (256, 384) and box.input_hw == (256, 384)
    box = preprocess.plan((100, 150), 384, 32, "predict")  # upscaled to fit imgsz
    assert box.resized_hw == (256, 384)


def test_square_fills_imgsz():
    box = preprocess.plan((288, 384), 384, 32, "square")
    assert box.input_hw == (384, 384) and (box.top, box.left) == (48, 0)
    assert box.pad_xy == (0, 48)


def test_unknown_mode():
    with pytest.raises(ValueError, match="letterbox mode"):
        preprocess.plan((10, 10), 64, 32, "stretch")


def test_apply_pads_grey_114():
    image = torch.zeros(3, 288, 384)
    x = preprocess.apply(image, preprocess.plan((288, 384), 384, 32, "val"))
    assert x.shape == (1, 3, 320, 416)
    assert float(x[0, :, 0, 0].max()) == pytest.approx(114 / 255)
    assert float(x[0, :, 16:304, 16:400].abs().max()) == 0.0


def test_to_original_undoes_the_letterbox_and_clips():
    box = preprocess.plan((288, 384), 384, 32, "val")
    det = Detections(
        boxes=torch.tensor([[16.0, 16.0, 116.0, 66.0], [0.0, 0.0, 500.0, 500.0]]),
        scores=torch.ones(2),
        classes=torch.zeros(2),
        keypoints=torch.tensor([[[26.0, 36.0, 0.9]], [[416.0, 0.0, 0.1]]]),
    )
    out = to_original(det, box)
    assert out.boxes.tolist() == [[0.0, 0.0, 100.0, 50.0], [0.0, 0.0, 384.0, 288.0]]
    expected = torch.tensor([[[10.0, 20.0, 0.9]], [[384.0, 0.0, 0.1]]])
    torch.testing.assert_close(out.keypoints, expected)


@pytest.mark.parametrize(
    "src, dst",
    [
        ((288, 384), (240, 320)),  # downscale
        ((200, 300), (256, 384)),  # upscale
        ((100, 150), (257, 385)),  # odd upscale
        ((288, 384), (144, 192)),  # exactly 2x (OpenCV's area shortcut)
        ((333, 517), (247, 384)),
        ((1, 7), (3, 5)),
    ],
)
def test_resize_is_opencv_inter_linear(src, dst):
    cv2 = pytest.importorskip("cv2", reason="opencv-python is the reference for this check")
    rng = np.random.default_rng(sum(src) + sum(dst))
    img = rng.integers(0, 256, (*src, 3), dtype=np.uint8)
    ref = cv2.resize(img, dst[::-1], interpolation=cv2.INTER_LINEAR)
    ours = preprocess.resize_linear_u8(torch.from_numpy(img).permute(2, 0, 1).int(), dst)
    np.testing.assert_array_equal(ours.permute(1, 2, 0).numpy(), ref.reshape(*dst, 3))
