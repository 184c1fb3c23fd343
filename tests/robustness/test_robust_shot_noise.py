"""Shot noise's Poisson sampler: the alias tables encode the Poisson law of every 8-bit level,
and the samples have its mean and variance."""

from __future__ import annotations

import math

import pytest
import torch

from pytest_kpmodel.robustness.ops.context import Ctx
from pytest_kpmodel.robustness.ops.noise import LEVELS, _shot_noise, poisson_alias_tables


@pytest.mark.parametrize("photons", [60.0, 25.0, 3.0])
def test_alias_tables_encode_the_poisson_law_of_each_level(photons):
    prob, alias, k = poisson_alias_tables(photons, "cpu")
    prob = prob.double().view(LEVELS, k)
    alias = alias.long().view(LEVELS, k)
    for level in (0, 1, 17, 128, 255):
        lam = level * photons / (LEVELS - 1)
        implied = torch.zeros(k, dtype=torch.float64)
        implied += prob[level] / k
        implied.index_add_(0, alias[level], (1 - prob[level]) / k)
        exact = torch.tensor(
            [math.exp(j * math.log(lam) - lam - math.lgamma(j + 1)) if lam else float(j == 0)
             for j in range(k)], dtype=torch.float64,
        )  # fmt: skip
        assert torch.allclose(implied, exact, atol=1e-7), (level, (implied - exact).abs().max())


def test_samples_have_the_poisson_mean_and_variance():
    photons, level = 60.0, 30  # rate 7.06: the clip at 60 photons (1.0) is out of reach
    x = torch.full((1, 3, 200, 200), level / 255)
    y = _shot_noise(x, {"photons": photons}, Ctx([7], torch.device("cpu")))
    counts = (y * photons).round()
    lam = level * photons / 255
    assert counts.mean().item() == pytest.approx(lam, rel=0.01)
    assert counts.var().item() == pytest.approx(lam, rel=0.03)


def test_a_batch_equals_its_images_one_by_one():
    x = torch.rand(2, 3, 16, 24).mul(255).round().div(255)
    both = _shot_noise(x, {"photons": 5.0}, Ctx([1, 2], torch.device("cpu")))
    second = _shot_noise(x[1:], {"photons": 5.0}, Ctx([2], torch.device("cpu")))
    assert torch.equal(both[1:], second)
