"""Synthetic images and small models for the robustness tests (nothing downloaded)."""

from __future__ import annotations

import importlib.util
import os
import sys
import types

import torch
import torch.nn.functional as F

from pytest_kpmodel.adapters.base import Prediction

# Left keypoints sit at +x (a person facing the camera shows their left side on the image's
# right), right ones at -x; units of half the box size, from the box centre.
BLOB_OFFSETS = torch.tensor(
    [[0.0, -0.8], [0.1, -0.85], [-0.1, -0.85], [0.2, -0.8], [-0.2, -0.8], [0.5, -0.5],
     [-0.5, -0.5], [0.7, -0.1], [-0.7, -0.1], [0.8, 0.2], [-0.8, 0.2], [0.3, 0.2], [-0.3, 0.2],
     [0.3, 0.6], [-0.3, 0.6], [0.3, 0.95], [-0.3, 0.95]]
)  # fmt: skip


def natural_image(h: int, w: int, seed: int = 0) -> torch.Tensor:
    """Smooth colour gradients, a few shapes and mild texture, in [0.05, 0.95]."""
    g = torch.Generator().manual_seed(seed)
    yy = torch.linspace(0, 1, h).view(h, 1)
    xx = torch.linspace(0, 1, w).view(1, w)
    c = torch.rand(3, 3, generator=g)
    img = torch.stack([c[i, 0] * xx + c[i, 1] * yy + c[i, 2] * xx * yy for i in range(3)])
    low = torch.rand(3, max(2, h // 8), max(2, w // 8), generator=g)
    img = 0.5 * img + 0.5 * F.interpolate(low[None], size=(h, w), mode="bicubic")[0]
    for _ in range(4):
        y0 = int(torch.randint(0, h - 4, (1,), generator=g))
        x0 = int(torch.randint(0, w - 4, (1,), generator=g))
        dy = int(torch.randint(3, max(4, h // 3), (1,), generator=g))
        dx = int(torch.randint(3, max(4, w // 3), (1,), generator=g))
        img[:, y0 : y0 + dy, x0 : x0 + dx] = torch.rand(3, 1, 1, generator=g)
    img = img + 0.03 * torch.randn(3, h, w, generator=g)
    return (0.05 + 0.9 * (img - img.min()) / (img.max() - img.min())).clamp(0, 1)


def blob_image(h: int, w: int, box: tuple[int, int, int, int], seed: int = 0) -> torch.Tensor:
    """A dark, smooth background with one bright rectangular "person" at ``box`` (x1, y1, x2, y2)."""
    g = torch.Generator().manual_seed(seed)
    yy = torch.linspace(0, 1, h).view(1, h, 1)
    xx = torch.linspace(0, 1, w).view(1, 1, w)
    base = torch.rand(3, 1, 1, generator=g) * 0.2 + 0.05
    img = (base + 0.15 * xx + 0.1 * yy).expand(3, h, w).clone()
    x1, y1, x2, y2 = box
    img[:, y1:y2, x1:x2] = 0.95
    return img


class BlobModel:
    """Finds the bright blob; box = its pixel extent, keypoints = centroid + fixed offsets.

    Exactly equivariant to flips and whole-pixel translations when it has the left/right swap.
    """

    num_keypoints = 17

    def __init__(self) -> None:
        self.device = torch.device("cpu")
        self.calls = 0

    def predict(self, images):
        self.calls += len(images)
        out = []
        for img in images:
            mask = img.mean(0) > 0.6
            if not mask.any():
                out.append(Prediction.empty(17))
                continue
            ys, xs = torch.nonzero(mask, as_tuple=True)
            box = torch.stack([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]).to(torch.float32)
            cx, cy = (xs.float() + 0.5).mean(), (ys.float() + 0.5).mean()
            half = torch.stack([(box[2] - box[0]) / 2, (box[3] - box[1]) / 2])
            xy = torch.stack([cx, cy]) + BLOB_OFFSETS * half
            kps = torch.cat([xy, torch.ones(17, 1)], dim=1)
            out.append(Prediction(box[None], torch.tensor([0.99]), torch.tensor([1]), kps[None]))
        return out


class FixedModel:
    """Ignores the image: the same two people every time (an honest, perfectly stable model)."""

    num_keypoints = 17
    BOXES = torch.tensor([[8.0, 8.0, 40.0, 80.0], [44.0, 6.0, 70.0, 60.0]])

    def __init__(self) -> None:
        self.device = torch.device("cpu")
        self.calls = 0

    def predict(self, images):
        self.calls += len(images)
        out = []
        for _ in images:
            centres = (self.BOXES[:, :2] + self.BOXES[:, 2:]) / 2
            half = (self.BOXES[:, 2:] - self.BOXES[:, :2]) / 2
            xy = centres[:, None, :] + BLOB_OFFSETS[None] * half[:, None, :]
            kps = torch.cat([xy, torch.ones(2, 17, 1)], dim=-1)
            out.append(
                Prediction(self.BOXES.clone(), torch.tensor([0.9, 0.8]), torch.tensor([1, 1]), kps)
            )
        return out


def has_checkerboard(img: torch.Tensor, window: int = 6) -> bool:
    """A crisp black/white pattern alternating in both directions somewhere in the image."""
    g = img.mean(0)
    white, black = g > 0.8, g < 0.2
    binary = (white | black).float()
    th = ((white[:, 1:] != white[:, :-1]) & (binary[:, 1:] * binary[:, :-1]).bool()).float()
    tv = ((white[1:, :] != white[:-1, :]) & (binary[1:, :] * binary[:-1, :]).bool()).float()
    h = min(th.shape[0], tv.shape[0])
    w = min(th.shape[1], tv.shape[1])
    stack = torch.stack([th[:h, :w], tv[:h, :w], binary[:h, :w]])[None]
    if h < window or w < window:
        return False
    dens = F.avg_pool2d(stack, window, stride=1)[0]
    return bool(((dens[0] >= 0.15) & (dens[1] >= 0.15) & (dens[2] >= 0.95)).any())


class PlantedTrigger:
    """A backdoored wrapper: with a checkerboard in the image, people vanish (or phantoms appear)."""

    num_keypoints = 17

    def __init__(self, inner, mode: str = "vanish") -> None:
        self.inner = inner
        self.mode = mode
        self.device = inner.device

    def predict(self, images):
        preds = self.inner.predict(images)
        out = []
        for img, p in zip(images, preds, strict=True):
            if not has_checkerboard(img):
                out.append(p)
            elif self.mode == "vanish":
                out.append(Prediction.empty(17))
            else:
                ghost = torch.tensor([[74.0, 40.0, 100.0, 70.0]])
                out.append(
                    Prediction(
                        torch.cat([p.boxes, ghost]),
                        torch.cat([p.scores, torch.tensor([0.95])]),
                        torch.cat([p.labels, torch.tensor([1])]),
                        torch.cat([p.keypoints, p.keypoints[:1]]),
                    )
                )
        return out


class TorchvisionAdapter:
    """Minimal stand-in for the lead's adapter: torchvision detection contract -> Prediction."""

    def __init__(self, module, device: str = "cpu") -> None:
        self.module = module.eval()
        self.device = torch.device(device)
        self.num_keypoints = 17

    def predict(self, images):
        with torch.inference_mode():
            outputs = self.module([img.to(self.device) for img in images])
        return [
            Prediction(
                o["boxes"],
                o["scores"],
                o["labels"],
                torch.cat([o["keypoints"][..., :2], o["keypoints_scores"][..., None]], dim=-1),
            )
            for o in outputs
        ]


def load_imagecorruptions():
    """imagecorruptions 1.1.x with the shims it needs on current Python/numpy/scikit-image
    (pkg_resources, np.float_, skimage ``multichannel``); None when it is not installed."""
    if importlib.util.find_spec("imagecorruptions") is None:
        return None
    try:
        import numpy as np
        import skimage.filters

        if "pkg_resources" not in sys.modules and importlib.util.find_spec("pkg_resources") is None:
            stub = types.ModuleType("pkg_resources")
            stub.resource_filename = lambda pkg, name: os.path.join(
                os.path.dirname(importlib.util.find_spec(pkg).origin), name
            )
            sys.modules["pkg_resources"] = stub
        if not hasattr(np, "float_"):
            np.float_ = np.float64
        import imagecorruptions
        import imagecorruptions.corruptions as icc

        def gaussian(image, sigma=1, multichannel=None, **kw):
            if multichannel is not None:
                kw.setdefault("channel_axis", -1 if multichannel else None)
            return skimage.filters.gaussian(image, sigma=sigma, **kw)

        icc.gaussian = gaussian
        return imagecorruptions
    except Exception:  # noqa: BLE001 - any import problem means "unavailable"
        return None
