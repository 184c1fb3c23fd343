"""Letterboxing as Ultralytics does it, and OpenCV's bilinear resize reproduced bit for bit.

Three modes (the card's ``[model.kwargs] letterbox``), each matching one Ultralytics path:

``"val"`` (default) - what ``model.val()`` / ``yolo val pose`` feeds the network. The dataset
  resizes the long side to ``imgsz`` (``ceil`` of each side, so the two gains can differ by a
  fraction of a pixel) and letterboxes to a *rectangle* ("rect" batches): each side of the
  original aspect ratio scaled to ``imgsz``, divided by the stride, **plus half a stride**,
  rounded up to a whole stride - e.g. a 384x288 image at ``imgsz=384`` runs as 416x320 with 16
  grey pixels on every side. Predictions are mapped back with the stored gains and padding
  (``ratio_pad``). Ultralytics shapes a rect batch from every image in it (sorted by aspect
  ratio), so this equals ``val`` exactly when the images of a batch share their aspect ratio
  (the project's synthetic sets do); otherwise val pads some images a little more.
``"predict"`` - what ``model.predict()`` does for a ``.pt`` model: one uniform scale so the image
  fits ``imgsz`` (``round`` of each side, upscaling allowed), then the *minimum* padding that makes
  each side a multiple of the stride (``auto=True``): a 384x288 image runs as 384x288.
``"square"`` - a full ``imgsz`` x ``imgsz`` letterbox (``auto=False``): what a fixed-shape export
  (ONNX, TensorRT) receives, and what predict does for such formats.

Padding is grey 114; the input is RGB in [0, 1] (Ultralytics reads BGR with OpenCV and flips
it; the resize works per channel, so the order does not matter). The resize is OpenCV's
``INTER_LINEAR`` for 8-bit images in its fixed-point form (11-bit coefficients, the vectorised
rounding), which the tests check against ``cv2.resize``; a float bilinear resize differs by one
grey level on about 1 pixel in 8.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

MODES = ("val", "predict", "square")
PAD_VALUE = 114
_COEF_BITS = 11
_COEF_SCALE = 1 << _COEF_BITS


@dataclass(frozen=True)
class Letterbox:
    """How one image becomes the network input, and how to map predictions back."""

    original_hw: tuple[int, int]
    resized_hw: tuple[int, int]  # the image's size inside the input
    input_hw: tuple[int, int]  # network input, padding included
    top: int
    left: int
    gain_yx: tuple[float, float]  # input pixels per original pixel, per axis
    pad_xy: tuple[float, float]  # subtracted before dividing by the gain
    stages: tuple[tuple[int, int], ...]  # the sizes the 8-bit image is resized to, in order


def plan(original_hw: tuple[int, int], imgsz: int, stride: int, mode: str) -> Letterbox:
    """The letterbox of an image of ``original_hw`` for ``mode`` (see the module doc)."""
    h0, w0 = original_hw
    if mode == "val":
        return _plan_val(h0, w0, imgsz, stride)
    if mode not in ("predict", "square"):
        raise ValueError(f"letterbox mode must be one of {', '.join(MODES)}, got {mode!r}")
    # LetterBox(new_shape=(imgsz, imgsz), auto=mode == "predict", scaleup=True, center=True)
    r = min(imgsz / h0, imgsz / w0)
    nw, nh = max(round(w0 * r), 1), max(round(h0 * r), 1)
    dw, dh = imgsz - nw, imgsz - nh
    if mode == "predict":
        dw, dh = dw % stride, dh % stride
    top, bottom, left, right = _split(dh / 2, dw / 2)
    ih, iw = nh + top + bottom, nw + left + right
    # scale_boxes / scale_coords without ratio_pad: the gains and pad are recomputed from shapes
    gain = min(ih / h0, iw / w0)
    new_h, new_w = max(round(h0 * gain), 1), max(round(w0 * gain), 1)
    pad_x = round((iw - new_w) / 2 - 0.1)
    pad_y = round((ih - new_h) / 2 - 0.1)
    gain_yx = (new_h / h0, new_w / w0)
    return Letterbox((h0, w0), (nh, nw), (ih, iw), top, left, gain_yx, (pad_x, pad_y), ((nh, nw),))


def _plan_val(h0: int, w0: int, imgsz: int, stride: int) -> Letterbox:
    # BaseDataset.load_image(rect_mode=True): the long side to imgsz, ceil of each side
    r = imgsz / max(h0, w0)
    h1, w1 = h0, w0
    if r != 1:
        w1, h1 = min(math.ceil(w0 * r), imgsz), min(math.ceil(h0 * r), imgsz)
    # BaseDataset.set_rectangle for a batch of this aspect ratio, pad = 0.5 in val
    ar = h0 / w0
    shape = [ar, 1.0] if ar < 1 else [1.0, 1 / ar] if ar > 1 else [1.0, 1.0]
    rh, rw = (math.ceil(s * imgsz / stride + 0.5) * stride for s in shape)
    # LetterBox(new_shape=(rh, rw), scaleup=False, center=True)
    r2 = min(min(rh / h1, rw / w1), 1.0)
    nw, nh = max(round(w1 * r2), 1), max(round(h1 * r2), 1)
    top, bottom, left, right = _split((rh - nh) / 2, (rw - nw) / 2)
    gain = (h1 / h0 * r2, w1 / w0 * r2)
    pad = (float(left), float(top))
    stages = ((h1, w1), (nh, nw))
    return Letterbox((h0, w0), (nh, nw), (rh, rw), top, left, gain, pad, stages)


def _split(dh: float, dw: float) -> tuple[int, int, int, int]:
    return round(dh - 0.1), round(dh + 0.1), round(dw - 0.1), round(dw + 0.1)


def apply(image: torch.Tensor, box: Letterbox) -> torch.Tensor:
    """``image`` (CHW float in [0, 1], 8-bit values) -> ``[1, 3, H, W]`` float input in [0, 1]."""
    x = (image.float() * 255).round_().clamp_(0, 255).to(torch.int32)
    for hw in box.stages:
        if tuple(x.shape[1:]) != tuple(hw):
            x = resize_linear_u8(x, hw)
    c, h, w = x.shape
    ih, iw = box.input_hw
    out = torch.full((c, ih, iw), PAD_VALUE, dtype=torch.int32, device=x.device)
    out[:, box.top : box.top + h, box.left : box.left + w] = x
    return (out.float() / 255.0).unsqueeze(0)


def _coeffs(src: int, dst: int, clamp: bool, device) -> tuple[torch.Tensor, ...]:
    """OpenCV's per-output source index pair and 11-bit weights along one axis."""
    scale = src / dst
    f = ((torch.arange(dst, dtype=torch.float64, device=device) + 0.5) * scale - 0.5).float()
    s = torch.floor(f)
    f = f - s
    s = s.to(torch.int64)
    if clamp:  # columns: OpenCV clamps the position (weight 0 beyond the border)
        low = s < 0
        f = torch.where(low, torch.zeros_like(f), f)
        s = torch.where(low, torch.zeros_like(s), s)
        high = s >= src - 1
        f = torch.where(high, torch.zeros_like(f), f)
        s = torch.where(high, torch.full_like(s, src - 1), s)
    c0 = torch.round((1.0 - f) * _COEF_SCALE).to(torch.int64)
    c1 = torch.round(f * _COEF_SCALE).to(torch.int64)
    s0 = s.clamp(0, src - 1)
    s1 = (s + 1).clamp(0, src - 1)
    return s0, s1, c0, c1


def resize_linear_u8(x: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
    """``cv2.resize(img, (w, h), interpolation=cv2.INTER_LINEAR)`` for an 8-bit image given as
    an integer ``[C, H, W]`` tensor (values 0-255); returns int32 ``[C, h, w]``."""
    _, h, w = x.shape
    oh, ow = hw
    x = x.to(torch.int64)
    xs0, xs1, a0, a1 = _coeffs(w, ow, True, x.device)
    ys0, ys1, b0, b1 = _coeffs(h, oh, False, x.device)
    rows = x[:, :, xs0] * a0 + x[:, :, xs1] * a1  # [C, H, ow], scaled by 2^11
    r0, r1 = rows[:, ys0], rows[:, ys1]
    b0, b1 = b0[:, None], b1[:, None]
    # OpenCV's vectorised vertical pass: ((b0*(r0>>4))>>16) + ((b1*(r1>>4))>>16), then +2 >> 2
    out = (((b0 * (r0 >> 4)) >> 16) + ((b1 * (r1 >> 4)) >> 16) + 2) >> 2
    return out.clamp_(0, 255).to(torch.int32)
