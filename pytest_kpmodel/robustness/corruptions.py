"""The 15 ImageNet-C / COCO-C corruptions (Hendrycks & Dietterich 2019; Michaelis et al. 2019),
re-implemented in torch so that they run batched on the model's device.

Parameters per severity (1-5) are those of ``imagecorruptions/corruptions.py`` (bethgelab,
v1.1.x), the package used to build COCO-C; ``REFERENCE`` copies them verbatim and the tests check
that ``perturbations.params_for(name, s)`` reproduces them at every integer severity.

============================  ===================================================================
corruption                    severity 1 .. 5 (imagecorruptions constants)
============================  ===================================================================
gaussian_noise                sigma .08 .12 .18 .26 .38
shot_noise                    c (photons) 60 25 12 5 3
impulse_noise                 amount .03 .06 .09 .17 .27 (salt vs pepper 0.5)
defocus_blur                  (radius, alias_blur) (3,.1) (4,.5) (6,.5) (8,.5) (10,.5)
glass_blur                    (sigma, max_delta, iterations) (.7,1,2) (.9,2,1) (1,2,3) (1.1,3,2)
                              (1.5,4,2)
motion_blur                   (radius, sigma) (10,3) (15,5) (15,8) (15,12) (20,15); angle U(-45,45)
zoom_blur                     zooms np.arange(1,1.11,.01) (1,1.16,.01) (1,1.21,.02) (1,1.26,.02)
                              (1,1.31,.03)
snow                          (loc, scale, zoom, threshold, radius, sigma, blend)
                              (.1,.3,3,.5,10,4,.8) (.2,.3,2,.5,12,4,.7) (.55,.3,4,.9,12,8,.7)
                              (.55,.3,4.5,.85,12,8,.65) (.55,.3,2.5,.85,12,12,.55); angle U(-135,-45)
frost                         (image, frost) (1,.4) (.8,.6) (.7,.7) (.65,.7) (.6,.75)
fog                           (amount, decay) (1.5,2) (2,2) (2.5,1.7) (2.5,1.5) (3,1.4)
brightness                    HSV V + .1 .2 .3 .4 .5
contrast                      factor .4 .3 .2 .1 .05
elastic_transform             alpha 250 x (.05 .065 .085 .1 .12); sigma .01 x (H, W); max_d .005 H
pixelate                      factor .6 .5 .4 .3 .25
jpeg_compression              quality 25 18 15 10 7
============================  ===================================================================

Deviations from imagecorruptions (all deliberate, none changes a parameter):

- frost: a procedurally generated ice texture (plasma clouds + grain + short crystal streaks,
  blue-white tint, calibrated to the shipped photographs' mean ~0.65 and std ~0.1) replaces the
  six frost photographs, which are not redistributed here; the blend ``image * x + frost * tex``
  and its constants are unchanged.
- glass_blur: the sequential pixel swaps (a Python/numba loop over every pixel) are vectorised:
  each pixel takes the value at a random offset from the same ``randint(-max_delta, max_delta)``
  range, per iteration. Statistically similar local shuffling; not a permutation.
- pixelate: the box downsample is ``F.interpolate(mode="area")`` (adaptive average pooling),
  identical to PIL's BOX filter for integer ratios, within a pixel's weight otherwise; the
  upsample is ``nearest-exact`` (PIL NEAREST's pixel-centre rule).
- jpeg_compression: PIL's encoder on the CPU, exactly as imagecorruptions (one image at a time:
  libjpeg is not batched); on CUDA torchvision's nvjpeg round trip when available (same quality
  scale, 4:2:0), else PIL.
- Random numbers come from per-image ``torch.Generator`` streams, not numpy's global state, so
  the noise realisations differ from imagecorruptions' (the distributions are the same) and are
  reproducible by seed; CPU and CUDA streams differ.
- Everything else (noises, brightness via the HSV round trip in closed form, contrast, disk and
  motion kernels, zoom crops with scipy's corner-aligned linear zoom, the plasma fractal,
  elastic displacement smoothing with scipy's 'reflect' border) follows the reference formulas;
  float32 throughout.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from pytest_kpmodel.robustness.kinds import CORRUPTIONS
from pytest_kpmodel.robustness.perturbations import Perturbation

if TYPE_CHECKING:
    import torch

__all__ = ["CORRUPTIONS", "REFERENCE", "SEVERITIES", "corruption", "corrupt"]

SEVERITIES: tuple[int, ...] = (1, 2, 3, 4, 5)

# imagecorruptions/corruptions.py, verbatim constants (c = [...][severity - 1]).
REFERENCE: dict[str, list[tuple[float, ...]]] = {
    "gaussian_noise": [(0.08,), (0.12,), (0.18,), (0.26,), (0.38,)],
    "shot_noise": [(60,), (25,), (12,), (5,), (3,)],
    "impulse_noise": [(0.03,), (0.06,), (0.09,), (0.17,), (0.27,)],
    "defocus_blur": [(3, 0.1), (4, 0.5), (6, 0.5), (8, 0.5), (10, 0.5)],
    "glass_blur": [(0.7, 1, 2), (0.9, 2, 1), (1, 2, 3), (1.1, 3, 2), (1.5, 4, 2)],
    "motion_blur": [(10, 3), (15, 5), (15, 8), (15, 12), (20, 15)],
    "zoom_blur": [(1.11, 0.01), (1.16, 0.01), (1.21, 0.02), (1.26, 0.02), (1.31, 0.03)],
    "snow": [
        (0.1, 0.3, 3, 0.5, 10, 4, 0.8),
        (0.2, 0.3, 2, 0.5, 12, 4, 0.7),
        (0.55, 0.3, 4, 0.9, 12, 8, 0.7),
        (0.55, 0.3, 4.5, 0.85, 12, 8, 0.65),
        (0.55, 0.3, 2.5, 0.85, 12, 12, 0.55),
    ],
    "frost": [(1, 0.4), (0.8, 0.6), (0.7, 0.7), (0.65, 0.7), (0.6, 0.75)],
    "fog": [(1.5, 2), (2.0, 2), (2.5, 1.7), (2.5, 1.5), (3.0, 1.4)],
    "brightness": [(0.1,), (0.2,), (0.3,), (0.4,), (0.5,)],
    "contrast": [(0.4,), (0.3,), (0.2,), (0.1,), (0.05,)],
    "elastic_transform": [(250 * 0.05,), (250 * 0.065,), (250 * 0.085,), (250 * 0.1,),
                          (250 * 0.12,)],
    "pixelate": [(0.6,), (0.5,), (0.4,), (0.3,), (0.25,)],
    "jpeg_compression": [(25,), (18,), (15,), (10,), (7,)],
}  # fmt: skip
"""For zoom_blur the pair is ``np.arange``'s (stop, step); all others are ``c`` itself."""


def corruption(name: str, severity: int, seed: int = 0) -> Perturbation:
    """The ImageNet-C corruption ``name`` at integer ``severity`` 1-5 as a ``Perturbation``."""
    if name not in CORRUPTIONS:
        raise ValueError(f"unknown corruption {name!r}; one of {', '.join(CORRUPTIONS)}")
    if severity not in SEVERITIES or isinstance(severity, bool):
        raise ValueError(f"{name}: severity must be an integer 1-5, got {severity!r}")
    return Perturbation(name, float(severity), seed=seed)


def corrupt(
    images: Sequence[torch.Tensor],
    name: str,
    severity: int,
    seed: int = 0,
    indices: Sequence[int] | None = None,
) -> list[torch.Tensor]:
    """Corrupt CHW float images in [0, 1] on their device; ``indices`` pick the random streams
    (default ``range(len(images))``), so a data set corrupted in any batching is identical."""
    return corruption(name, severity, seed).apply(images, indices=indices).images
