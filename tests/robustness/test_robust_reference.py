"""The torch corruptions against imagecorruptions itself (skipped when it is not installed).

Deterministic corruptions must agree to float precision; random ones in distribution (the random
streams differ by design); frost in distribution over its (procedural vs photographic) texture.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from kp_robust_helpers import load_imagecorruptions, natural_image
from PIL import Image

from pytest_kpmodel.robustness.perturbations import Perturbation

ic = load_imagecorruptions()
pytestmark = [
    pytest.mark.skipif(ic is None, reason="imagecorruptions (+ shims) not importable"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]

H, W = 64, 80


@pytest.fixture(scope="module")
def pair():
    img = natural_image(H, W, seed=1)
    u8 = (img * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    return u8, torch.from_numpy(u8).permute(2, 0, 1).float() / 255


def reference(name: str, u8: np.ndarray, severity: int, np_seed: int = 0) -> np.ndarray:
    np.random.seed(np_seed)
    arg = Image.fromarray(u8) if name in ("jpeg_compression", "pixelate") else u8
    return np.asarray(getattr(ic.corruptions, name)(arg, severity), dtype=np.float64) / 255


def ours(name: str, x: torch.Tensor, severity: int, seed: int = 0, **free) -> np.ndarray:
    out = Perturbation.of(name, severity, seed=seed, **free).apply([x]).images[0]
    return out.permute(1, 2, 0).double().numpy()


@pytest.mark.parametrize("severity", [1, 3, 5])
@pytest.mark.parametrize(
    "name", ["brightness", "contrast", "defocus_blur", "zoom_blur", "jpeg_compression"]
)
def test_deterministic_corruptions_match_exactly(pair, name, severity):
    u8, x = pair
    assert np.abs(reference(name, u8, severity) - ours(name, x, severity)).max() < 1e-4


@pytest.mark.parametrize("severity", [1, 5])
def test_motion_blur_matches_for_the_same_angle(pair, severity):
    u8, x = pair
    np.random.seed(severity)
    angle = np.random.uniform(-45, 45)  # the reference's first draw
    ref = reference("motion_blur", u8, severity, np_seed=severity)
    assert np.abs(ref - ours("motion_blur", x, severity, angle=angle)).max() < 1e-4


def test_pixelate_matches_for_whole_blocks_and_nearly_otherwise(pair):
    u8, x = pair
    assert np.abs(reference("pixelate", u8, 2) - ours("pixelate", x, 2)).max() <= 1 / 255 + 1e-6
    for s in (1, 3, 4, 5):  # non-integer ratios: adaptive average pooling vs PIL BOX weights
        assert np.abs(reference("pixelate", u8, s) - ours("pixelate", x, s)).mean() < 0.01


@pytest.mark.parametrize(
    ("name", "rel"),
    [("gaussian_noise", 0.05), ("shot_noise", 0.05), ("impulse_noise", 0.1),
     ("elastic_transform", 0.2), ("glass_blur", 0.3), ("snow", 0.1), ("fog", 0.25),
     ("frost", 0.15)],
)  # fmt: skip
def test_random_corruptions_match_in_distribution(pair, name, rel):
    u8, x = pair
    clean = u8 / 255
    for s in (1, 3, 5):
        seeds = range(2 if name == "glass_blur" else 8)  # the reference glass blur is a Python loop
        ref = [reference(name, u8, s, np_seed=k) for k in seeds]
        got = [ours(name, x, s, seed=k) for k in seeds]
        ref_dev = np.mean([np.abs(r - clean).mean() for r in ref])
        got_dev = np.mean([np.abs(g - clean).mean() for g in got])
        assert abs(got_dev - ref_dev) <= rel * ref_dev, (name, s, got_dev, ref_dev)
        ref_mean = np.mean([r.mean() for r in ref])
        got_mean = np.mean([g.mean() for g in got])
        assert abs(got_mean - ref_mean) < 0.06, (name, s, got_mean, ref_mean)
