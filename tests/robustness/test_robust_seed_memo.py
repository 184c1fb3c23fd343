"""What depends on the seeds only is made once per sweep: frost's texture is shared by the
severities of the same images, equal to a fresh one, and bounded in bytes."""

from __future__ import annotations

import torch

from pytest_kpmodel.robustness.ops import weather
from pytest_kpmodel.robustness.ops.context import SEED_MEMO, ByteLRU
from pytest_kpmodel.robustness.perturbations import Perturbation


def test_frost_texture_is_made_once_for_the_severities_of_the_same_images(monkeypatch):
    made = []
    original = weather.frost_texture

    def counting(*args, **kwargs):
        made.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(weather, "frost_texture", counting)
    SEED_MEMO.clear()
    images = [torch.rand(3, 40, 56), torch.rand(3, 40, 56)]
    shared = [Perturbation("frost", float(s), seed=3).apply(images).images for s in (1, 2, 5)]
    assert len(made) == 1
    SEED_MEMO.clear()
    fresh = Perturbation("frost", 5.0, seed=3).apply(images).images
    assert len(made) == 2
    assert all(torch.equal(a, b) for a, b in zip(shared[2], fresh, strict=True))
    Perturbation("frost", 5.0, seed=4).apply(images)  # another seed: another texture
    assert len(made) == 3
    SEED_MEMO.clear()


def test_byte_lru_evicts_the_least_recent_and_skips_what_is_too_big():
    lru = ByteLRU(max_bytes=2 * 400)  # two 100-float tensors
    a, b, c = (torch.full((100,), float(i)) for i in range(3))
    assert lru.get("a", lambda: a) is a and lru.get("b", lambda: b) is b
    assert lru.get("a", lambda: torch.zeros(1)) is a  # a hit, and now the most recent
    lru.get("c", lambda: c)  # evicts b
    assert set(lru.entries) == {"a", "c"} and lru.bytes == 800
    big = torch.zeros(1000)
    assert lru.get("big", lambda: big) is big and "big" not in lru.entries


def test_elastic_displacement_is_made_once_and_scaled_per_severity(monkeypatch):
    from pytest_kpmodel.robustness.ops import digital

    made = []
    original = digital._displacement

    def counting(*args, **kwargs):
        made.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(digital, "_displacement", counting)
    SEED_MEMO.clear()
    images = [torch.rand(3, 40, 56)]
    shared = [Perturbation("elastic_transform", float(s), seed=1).apply(images).images[0]
              for s in (1, 4)]  # fmt: skip
    assert len(made) == 1
    SEED_MEMO.clear()
    fresh = Perturbation("elastic_transform", 4.0, seed=1).apply(images).images[0]
    assert len(made) == 2 and torch.equal(shared[1], fresh)
    assert not torch.equal(shared[0], shared[1])  # alpha differs by severity
    SEED_MEMO.clear()
