"""What ``DefaultPredictor`` does around the network, for the plugin's float RGB images.

In: a CHW float image in [0, 1] (RGB), as every adapter receives it. detectron2 is given the
uint8 BGR image it was decoded from, so the image is first rounded back to uint8 (exact for
images that were ``uint8 / 255``), flipped to BGR when ``INPUT.FORMAT`` is BGR, and resized by
``ResizeShortestEdge(MIN_SIZE_TEST, MAX_SIZE_TEST)``: PIL's bilinear resize of the uint8 image
(PIL filters with support scaled to the reduction, i.e. antialiased), to the size detectron2's
``get_output_shape`` computes (``int(x + 0.5)``). The network sees ``(image - PIXEL_MEAN) /
PIXEL_STD``, zero-padded at the bottom and right to a multiple of 32.

Out (``detector_postprocess``): boxes scaled by ``(W / w, H / h)``, clipped to the original
image and empty ones dropped; keypoint x, y scaled the same way (not clipped).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def output_shape(h: int, w: int, short: int, max_size: int) -> tuple[int, int]:
    size = short * 1.0
    scale = size / min(h, w)
    if h < w:
        newh, neww = size, scale * w
    else:
        newh, neww = scale * h, size
    if max(newh, neww) > max_size:
        scale = max_size * 1.0 / max(newh, neww)
        newh = newh * scale
        neww = neww * scale
    return int(newh + 0.5), int(neww + 0.5)


def to_uint8_hwc(image: torch.Tensor, bgr: bool) -> np.ndarray:
    """CHW float [0, 1] RGB -> HWC uint8 (BGR when ``bgr``), as decoded images are."""
    pixels = image.detach().float().mul(255).round_().clamp_(0, 255).to(torch.uint8).cpu()
    if bgr:
        pixels = pixels.flip(0)
    return pixels.permute(1, 2, 0).contiguous().numpy()


def resize(pixels: np.ndarray, short: int, max_size: int) -> np.ndarray:
    if short == 0:
        return pixels
    from PIL import Image

    h, w = pixels.shape[:2]
    newh, neww = output_shape(h, w, short, max_size)
    resized = Image.fromarray(pixels).resize((neww, newh), Image.BILINEAR)
    return np.asarray(resized)


def network_input(pixels: np.ndarray, device: torch.device) -> torch.Tensor:
    """HWC uint8 -> CHW float32 in 0-255, as ``DefaultPredictor`` hands it to the model."""
    return torch.as_tensor(pixels.astype("float32").transpose(2, 0, 1)).to(device)


def batch(
    images: list[torch.Tensor], mean: torch.Tensor, std: torch.Tensor, divisibility: int
) -> tuple[torch.Tensor, list[tuple[int, int]]]:
    """Normalise and zero-pad to one (N, 3, H, W) batch (``ImageList.from_tensors``)."""
    images = [(x - mean) / std for x in images]
    sizes = [(int(x.shape[-2]), int(x.shape[-1])) for x in images]
    max_h = max(s[0] for s in sizes)
    max_w = max(s[1] for s in sizes)
    max_h = (max_h + divisibility - 1) // divisibility * divisibility
    max_w = (max_w + divisibility - 1) // divisibility * divisibility
    if len(images) == 1:
        h, w = sizes[0]
        return F.pad(images[0], [0, max_w - w, 0, max_h - h], value=0.0).unsqueeze_(0), sizes
    out = images[0].new_full((len(images), images[0].shape[0], max_h, max_w), 0.0)
    for i, x in enumerate(images):
        out[i, :, : x.shape[-2], : x.shape[-1]].copy_(x)
    return out, sizes


def postprocess(
    boxes: torch.Tensor,
    keypoints: torch.Tensor,
    input_size: tuple[int, int],
    output_size: tuple[int, int],
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Map boxes and keypoints from the network input to the original image; also returns
    which detections survive (non-empty after clipping)."""
    out_h, out_w = output_size
    scale_x, scale_y = out_w / input_size[1], out_h / input_size[0]
    boxes = boxes.clone()
    boxes[:, 0::2] *= scale_x
    boxes[:, 1::2] *= scale_y
    h, w = output_size
    boxes = torch.stack(
        (
            boxes[:, 0].clamp(min=0, max=w),
            boxes[:, 1].clamp(min=0, max=h),
            boxes[:, 2].clamp(min=0, max=w),
            boxes[:, 3].clamp(min=0, max=h),
        ),
        dim=-1,
    )
    keep = (boxes[:, 2] - boxes[:, 0] > 0) & (boxes[:, 3] - boxes[:, 1] > 0)
    keypoints = keypoints[keep].clone()
    keypoints[:, :, 0] *= scale_x
    keypoints[:, :, 1] *= scale_y
    return boxes[keep], keypoints, keep
