"""Every perturbation kind: identity at 0, monotone degradation, determinism, batching, repr."""

from __future__ import annotations

import math

import pytest
import torch
from kp_robust_helpers import natural_image

from pytest_kpmodel.robustness.corruptions import REFERENCE, corrupt, corruption
from pytest_kpmodel.robustness.kinds import CORRUPTIONS, GROUPS, KINDS, params_for, resolve_kinds
from pytest_kpmodel.robustness.ops.blur import zoom_factors
from pytest_kpmodel.robustness.ops.filters import disk_kernel, fft_conv, pad
from pytest_kpmodel.robustness.perturbations import Compose, Perturbation

ALL = tuple(KINDS)
PHOTOMETRIC = tuple(k for k in ALL if not KINDS[k].geometric)
GEOMETRIC = tuple(k for k in ALL if KINDS[k].geometric)
RANDOM = ("gaussian_noise", "shot_noise", "impulse_noise", "speckle_noise", "glass_blur",
          "motion_blur", "snow", "frost", "fog", "elastic_transform")  # fmt: skip
H, W = 64, 80


@pytest.fixture(scope="module")
def image():
    return natural_image(H, W, seed=1)


@pytest.fixture(scope="module")
def images():
    return [natural_image(H, W, seed=2), natural_image(48, 56, seed=3), natural_image(H, W, 4)]


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = float(((a - b) ** 2).mean())
    return math.inf if mse == 0 else 10 * math.log10(1.0 / mse)


def test_registry_has_every_requested_family():
    assert set(GROUPS) == {"photometric", "noise", "blur", "digital", "weather", "occlusion",
                           "geometric"}  # fmt: skip
    for name in ("brightness", "contrast", "low_light", "saturation", "colour_cast",
                 "gaussian_noise", "shot_noise", "impulse_noise", "speckle_noise",
                 "gaussian_blur", "defocus_blur", "motion_blur", "zoom_blur", "jpeg_compression",
                 "pixelate", "downscale", "fog", "frost", "snow", "occlusion", "scale",
                 "translate", "rotate", "hflip"):  # fmt: skip
        assert name in KINDS
    assert len(CORRUPTIONS) == 15 and set(CORRUPTIONS) <= set(KINDS)
    assert resolve_kinds(["noise", "hflip", "gaussian_noise"])[-1] == "hflip"
    with pytest.raises(ValueError, match="unknown perturbation kind or group 'nosie'"):
        resolve_kinds("nosie")


@pytest.mark.parametrize("kind", ALL)
def test_identity_at_severity_zero(kind, image):
    out = Perturbation(kind, 0.0, seed=3).apply([image])
    assert torch.equal(out.images[0], image)
    assert out.transforms == [None]


@pytest.mark.parametrize("kind", [k for k in ALL if k not in ("glass_blur", "hflip")])
def test_tiny_severity_is_nearly_the_identity(kind, image):
    """Shrinking severity towards 0 shrinks towards the mildest perturbation."""
    out = Perturbation(kind, 0.002, seed=3).apply([image]).images[0]
    if out.shape == image.shape:
        assert psnr(out, image) > 28, kind


def correlation(a: torch.Tensor, b: torch.Tensor) -> float:
    a = a.flatten() - a.mean()
    b = b.flatten() - b.mean()
    return float((a * b).sum() / (a.norm() * b.norm()))


def sharpness(a: torch.Tensor) -> float:
    return float(
        (a[..., 1:] - a[..., :-1]).abs().mean() + (a[..., 1:, :] - a[..., :-1, :]).abs().mean()
    )


def blockiness(a: torch.Tensor) -> float:
    return float((a[..., 1:] == a[..., :-1]).all(0).float().mean())


# The statistic that falls (or, negated, rises) with severity, per kind; PSNR unless noted:
# - frost: ImageNet-C's constants trade image weight against frost weight, so PSNR mostly tracks
#   clipping; the clean image's share (correlation) falls monotonically.
# - glass_blur: ImageNet-C's constants are not monotone in shuffling (iterations 2, 1, 3, 2, 2);
#   the blur (sigma .7 .. 1.5) is, and so is the sharpness left.
# - pixelate: factors .6 and .5 alias differently (only .5 makes exact 2x2 blocks), so PSNR
#   wobbles; the blockiness (equal neighbours) rises monotonically.
# - snow: severities 2 and 3 cover about the same area (3 has bigger flakes): 0.5 dB slack.
STATISTIC = {
    "frost": (correlation, 1e-4),
    "glass_blur": (sharpness, 1e-4),
    "pixelate": (lambda a, b: -blockiness(a), 1e-4),
    "snow": (psnr, 0.5),
}


@pytest.mark.parametrize("kind", PHOTOMETRIC)
def test_degradation_is_monotone_in_severity(kind):
    """The statistic against the clean image never rises as severity grows (same seed)."""
    image = natural_image(64, 80, seed=1)
    stat, slack = STATISTIC.get(kind, (psnr, 0.05))
    if stat is sharpness:
        values = [sharpness(image)]
    else:
        values = [stat(image, image) if stat is not psnr else math.inf]
    for s in (0.5, 1.0, 2.0, 3.0, 4.0, 5.0):
        out = Perturbation(kind, s, seed=5).apply([image]).images[0]
        values.append(sharpness(out) if stat is sharpness else stat(out, image))
    for a, b in zip(values, values[1:], strict=False):
        assert b <= a + slack, (kind, [round(v, 4) for v in values])
    assert values[-1] < values[2], (kind, values)  # severity 5 is clearly worse than 1


@pytest.mark.parametrize("kind", [k for k in GEOMETRIC if k != "hflip"])
def test_geometric_displacement_is_monotone_in_severity(kind):
    grid = torch.stack(torch.meshgrid(torch.arange(4.0, W, 8), torch.arange(4.0, H, 8),
                                      indexing="xy"), -1).reshape(-1, 2)  # fmt: skip
    grid = grid * torch.tensor([1.0, 1.0])
    last = 0.0
    img = torch.zeros(3, H, W)
    for s in (0.5, 1, 2, 3, 4, 5):
        p = (
            Perturbation.of(kind, s, direction=30.0)
            if kind == "translate"
            else Perturbation(kind, s)
        )
        t = p.apply([img]).transforms[0]
        d = float((t.points(grid.double()) - grid.double()).norm(dim=-1).mean())
        assert d > last, (kind, s, d, last)
        last = d


@pytest.mark.parametrize("kind", ALL)
def test_deterministic_for_a_seed(kind, images):
    a = Perturbation(kind, 3.0, seed=11).apply(images).images
    b = Perturbation(kind, 3.0, seed=11).apply(images).images
    for x, y in zip(a, b, strict=True):
        assert torch.equal(x, y)


@pytest.mark.parametrize("kind", RANDOM)
def test_seed_changes_the_random_draws(kind, image):
    a = Perturbation(kind, 3.0, seed=1).apply([image]).images[0]
    b = Perturbation(kind, 3.0, seed=2).apply([image]).images[0]
    assert not torch.equal(a, b)


@pytest.mark.parametrize("kind", ALL)
def test_batched_equals_per_image(kind, images):
    p = Perturbation(kind, 2.5, seed=7)
    batched = p.apply(images).images
    for i, img in enumerate(images):
        single = p.apply([img], indices=[i]).images[0]
        assert single.shape == batched[i].shape
        torch.testing.assert_close(single, batched[i], atol=2e-5, rtol=0)


def test_indices_select_the_random_streams(images):
    p = Perturbation("gaussian_noise", 2.0, seed=0)
    a = p.apply(images[:1], indices=[0]).images[0]
    b = p.apply(images[:1], indices=[5]).images[0]
    assert not torch.equal(a, b)


@pytest.mark.parametrize("kind", ALL)
def test_output_keeps_dtype_device_and_range(kind, images):
    out = Perturbation(kind, 4.0, seed=1).apply(images).images
    for x, y in zip(images, out, strict=True):
        assert y.dtype == x.dtype and y.device == x.device and y.shape[0] == x.shape[0]
        assert float(y.min()) >= 0.0 and float(y.max()) <= 1.0
        if not KINDS[kind].geometric:
            assert y.shape == x.shape


@pytest.mark.parametrize("kind", ALL)
def test_repr_reproduces_the_perturbation(kind, image):
    p = Perturbation.of(kind, 2.345, seed=99)
    q = eval(repr(p))  # noqa: S307 - the repr is the documented reproduction recipe
    assert q == p and hash(q) == hash(p)
    assert torch.equal(q.apply([image]).images[0], p.apply([image]).images[0])
    assert f"kind={kind!r}" in repr(p) and "seed=99" in repr(p)


def test_compose_repr_and_apply(image):
    c = Compose((Perturbation("brightness", 1.0), Perturbation("hflip", 1.0, seed=2)))
    assert eval(repr(c)) == c  # noqa: S307
    one = c.apply([image]).images[0]
    manual = Perturbation("hflip", 1.0).apply(Perturbation("brightness", 1.0).apply([image]).images)
    assert torch.equal(one, manual.images[0])
    assert c.kind == "brightness+hflip" and c.severity == 1.0


def test_bad_parameters_are_named():
    with pytest.raises(ValueError, match="unknown parameter"):
        Perturbation("gaussian_noise", 1.0, {"sigmaa": 0.1})
    with pytest.raises(ValueError, match=r"severity must be in \[0, 5\]"):
        Perturbation("gaussian_noise", 6.0)
    with pytest.raises(ValueError, match="unknown perturbation kind 'gauss'"):
        Perturbation("gauss", 1.0)


@pytest.mark.parametrize("name", CORRUPTIONS)
def test_integer_severities_reproduce_imagecorruptions_constants(name):
    for s, ref in enumerate(REFERENCE[name], start=1):
        p = params_for(name, s)
        got = {
            "gaussian_noise": (p.get("sigma"),),
            "shot_noise": (p.get("photons"),),
            "impulse_noise": (p.get("amount"),),
            "defocus_blur": (p.get("radius"), p.get("alias_blur")),
            "glass_blur": (p.get("sigma"), p.get("max_delta"), p.get("iterations")),
            "motion_blur": (p.get("radius"), p.get("sigma")),
            "snow": tuple(
                p.get(k) for k in ("loc", "scale", "zoom", "threshold", "radius", "sigma", "blend")
            ),  # fmt: skip
            "frost": (p.get("image"), p.get("frost")),
            "fog": (p.get("amount"), p.get("decay")),
            "brightness": (p.get("delta"),),
            "contrast": (p.get("factor"),),
            "elastic_transform": (p.get("alpha"),),
            "pixelate": (p.get("factor"),),
            "jpeg_compression": (p.get("quality"),),
        }
        if name == "zoom_blur":
            import numpy as np

            expected = np.arange(1, ref[0], ref[1])
            zooms = zoom_factors(p["max_zoom"], p["step"])
            assert len(zooms) == len(expected)
            assert max(abs(a - b) for a, b in zip(zooms, expected, strict=True)) < 1e-9
            continue
        assert got[name] == pytest.approx(ref, abs=1e-6), (name, s)


def test_corruption_api(images):
    out = corrupt(images, "fog", 3, seed=4)
    again = corruption("fog", 3, seed=4).apply(images).images
    assert all(torch.equal(a, b) for a, b in zip(out, again, strict=True))
    with pytest.raises(ValueError, match="severity must be an integer 1-5"):
        corruption("fog", 0)
    with pytest.raises(ValueError, match="unknown corruption"):
        corruption("speckle_noise", 1)


def test_occlusion_follows_the_people(image):
    box = torch.tensor([[10.0, 8.0, 40.0, 56.0]])
    target = {"boxes": box, "keypoints": torch.zeros(1, 17, 3)}
    p = Perturbation.of("occlusion", 3.0, colour=(1.0, 0.0, 0.0), x=0.5, y=0.5)
    out = p.apply([image], targets=[target]).images[0]
    changed = (out != image).any(0)
    ys, xs = torch.nonzero(changed, as_tuple=True)
    assert changed.any()
    assert xs.min() >= 10 and xs.max() < 40 and ys.min() >= 8 and ys.max() < 56
    beside = Perturbation.of("occlusion", 3.0, placement="beside", x=0.9)
    out2 = beside.apply([image], targets=[target]).images[0]
    xs2 = torch.nonzero((out2 != image).any(0), as_tuple=True)[1]
    assert xs2.min() >= 40  # right of the person, not over them


def test_fft_and_direct_convolution_agree():
    x = natural_image(40, 52, seed=9)[None]
    k = disk_kernel(4.0, 0.5, x.device)
    direct = torch.nn.functional.conv2d(
        pad(x.reshape(3, 1, 40, 52), 8, 8, "reflect101"), k.view(1, 1, 17, 17)
    )
    torch.testing.assert_close(fft_conv(x, k[None], "reflect101")[0], direct[:, 0],
                               atol=1e-5, rtol=0)  # fmt: skip


def test_padding_modes_match_numpy():
    import numpy as np

    a = np.arange(5.0)
    x = torch.arange(5.0).view(1, 1, 1, 5)
    for mode, np_mode in (("replicate", "edge"), ("reflect101", "reflect"),
                          ("symmetric", "symmetric")):  # fmt: skip
        got = pad(x, 0, 7, mode).flatten().numpy()
        assert np.array_equal(got, np.pad(a, 7, mode=np_mode)), mode
