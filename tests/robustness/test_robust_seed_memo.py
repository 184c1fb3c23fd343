"""What depends on the seeds only is made once per sweep: frost's texture is shared by the
severities of the same images, equal to a fresh one, and bounded in bytes; zoom blur hands its
partial sums on to the next severities of the same images, defocus blur its image spectrum;
the noises, fog and snow draw once for a sweep; all bit-identical to fresh ones."""

from __future__ import annotations

import pytest
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


def test_zoom_blur_hands_partial_sums_on_and_stays_bit_identical(monkeypatch):
    from pytest_kpmodel.robustness.ops import blur

    resized = []
    original = blur._ZoomScratch.zoom

    def counting(self, x, key):
        resized.append(key)
        return original(self, x, key)

    monkeypatch.setattr(blur._ZoomScratch, "zoom", counting)
    images = [torch.rand(3, 120, 160), torch.rand(3, 120, 160)]
    SEED_MEMO.clear()
    shared = [Perturbation("zoom_blur", float(s), seed=2).apply(images).images for s in range(1, 6)]
    n_shared = len(resized)
    assert not SEED_MEMO.entries  # the last severity leaves nothing behind
    resized.clear()
    for s in range(1, 6):
        SEED_MEMO.clear()
        fresh = Perturbation("zoom_blur", float(s), seed=2).apply(images).images
        assert all(torch.equal(a, b) for a, b in zip(shared[s - 1], fresh, strict=True)), s
    assert n_shared < 0.5 * len(resized)
    SEED_MEMO.clear()
    Perturbation("zoom_blur", 1.0, seed=2).apply(images)
    _assert_other_images_get_their_own("zoom_blur", 2.0, 2, (3, 120, 160))


def test_byte_lru_put_evicts_only_other_kinds():
    lru = ByteLRU(max_bytes=3 * 400)
    t = [torch.zeros(100) for _ in range(4)]
    lru.get(("frost", 1), lambda: t[0])
    assert lru.put(("zoom", 1), (t[1], 3)) and lru.put(("zoom", 2), t[2])
    assert lru.put(("zoom", 3), t[3])  # evicts frost's entry, not zoom's
    assert set(lru.entries) == {("zoom", 1), ("zoom", 2), ("zoom", 3)}
    assert not lru.put(("zoom", 4), torch.zeros(100)) and lru.bytes == 1200
    assert lru.pop(("zoom", 1))[1] == 3 and lru.bytes == 800


def test_defocus_spectrum_is_shared_by_the_severities_and_checked_against_the_image():
    images = [torch.rand(3, 40, 56), torch.rand(3, 40, 56)]
    SEED_MEMO.clear()
    shared = [Perturbation("defocus_blur", float(s), seed=1).apply(images).images for s in (1, 5)]
    assert any(k[0] == "defocus_blur" and k[-1] != "input" for k in SEED_MEMO.entries)
    SEED_MEMO.clear()
    fresh = Perturbation("defocus_blur", 5.0, seed=1).apply(images).images
    assert all(torch.equal(a, b) for a, b in zip(shared[1], fresh, strict=True))
    _assert_other_images_get_their_own("defocus_blur", 5.0, 1, (3, 40, 56))


@pytest.mark.parametrize("kind", ["gaussian_noise", "shot_noise", "impulse_noise", "fog", "snow"])
def test_draws_shared_by_the_severities_give_what_fresh_draws_give(kind):
    """The noises' draws, fog's plasma draws and haze, snow's flakes and angles: drawn once for
    a sweep's severities, the same images as drawing them at each severity."""
    images = [torch.rand(3, 40, 56), torch.rand(3, 40, 56)]
    SEED_MEMO.clear()
    shared = [Perturbation(kind, float(s), seed=6).apply(images).images for s in range(1, 6)]
    assert any(k[0] == kind for k in SEED_MEMO.entries)
    for s in range(1, 6):
        SEED_MEMO.clear()
        fresh = Perturbation(kind, float(s), seed=6).apply(images).images
        assert all(torch.equal(a, b) for a, b in zip(shared[s - 1], fresh, strict=True)), s
    SEED_MEMO.clear()


def test_reused_batch_buffer_never_leaks_into_results_or_hand_overs():
    """apply_kind writes each call's batch into one kept buffer: results that are the batch
    itself come back as copies, and zoom blur's hand-over of a one-channel batch (already
    channels-last) is its own copy."""
    a, b = [torch.rand(1, 40, 56)], [torch.rand(1, 40, 56)]
    SEED_MEMO.clear()
    first = Perturbation("zoom_blur", 1.0, seed=0).apply(a).images[0].clone()
    same = Perturbation("brightness", 0.0).apply(a).images[0]  # identity: the batch itself
    Perturbation("zoom_blur", 1.0, seed=0).apply(b)  # overwrites the kept buffer
    assert torch.equal(same, a[0])
    got = Perturbation("zoom_blur", 2.0, seed=0).apply(a).images[0]
    SEED_MEMO.clear()
    assert torch.equal(got, Perturbation("zoom_blur", 2.0, seed=0).apply(a).images[0])
    assert torch.equal(first, Perturbation("zoom_blur", 1.0, seed=0).apply(a).images[0])
    SEED_MEMO.clear()


def test_zoom_blur_scratch_resize_equals_interpolate(monkeypatch):
    from pytest_kpmodel.robustness.ops import blur

    images = [torch.rand(3, 60, 80), torch.rand(3, 60, 80)]
    SEED_MEMO.clear()
    fast = [Perturbation("zoom_blur", float(s)).apply(images).images for s in (1, 5)]
    monkeypatch.setattr(blur, "_UPSAMPLE_OUT", None)  # F.interpolate for every crop
    SEED_MEMO.clear()
    plain = [Perturbation("zoom_blur", float(s)).apply(images).images for s in (1, 5)]
    for a, b in zip(fast, plain, strict=True):
        assert all(torch.equal(u, v) for u, v in zip(a, b, strict=True))
    SEED_MEMO.clear()


def _assert_other_images_get_their_own(kind: str, severity: float, seed: int, shape) -> None:
    """After a sweep step on some images, other images under the same seeds get what a fresh
    memo gives them: nothing kept for the first images is served to these."""
    other = [torch.rand(*shape), torch.rand(*shape)]
    got = Perturbation(kind, severity, seed=seed).apply(other).images
    SEED_MEMO.clear()
    want = Perturbation(kind, severity, seed=seed).apply(other).images
    assert all(torch.equal(a, b) for a, b in zip(got, want, strict=True))
    SEED_MEMO.clear()
