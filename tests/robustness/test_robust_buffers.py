"""Buffers kept per thread between kernel calls (``context.scratch``, ``context.result_buffer``)
and the channels-last batch of kinds that work in that layout: never visible in results (a
result still held is never overwritten), and results equal to the plain path's."""

from __future__ import annotations

import pytest
import torch

from pytest_kpmodel.robustness.ops import context
from pytest_kpmodel.robustness.ops.apply import CHANNELS_LAST
from pytest_kpmodel.robustness.ops.context import SEED_MEMO, result_buffer, scratch
from pytest_kpmodel.robustness.perturbations import Perturbation


def _hwc(images: list[torch.Tensor]) -> list[torch.Tensor]:
    """The same images in HWC memory (CHW views), as images decoded from files are."""
    return [im.permute(1, 2, 0).contiguous().permute(2, 0, 1) for im in images]


def test_scratch_is_one_buffer_per_name_and_shape_within_the_bound(monkeypatch):
    a = scratch("test.a", (4, 5))
    assert scratch("test.a", (4, 5)) is a
    assert scratch("test.b", (4, 5)) is not a
    assert scratch("test.a", (4, 6)) is not a and scratch("test.a", (4, 6)) is not a.view(-1)
    assert scratch("test.a", (4, 6), torch.int32).dtype == torch.int32
    monkeypatch.setattr(context, "SCRATCH_MAX_BYTES", 0)
    assert scratch("test.c", (3,)) is not scratch("test.c", (3,))  # over the bound: fresh


def test_result_buffer_is_reused_only_once_nothing_else_holds_it():
    first = result_buffer((2, 7))
    first.fill_(1.0)
    held = first[1]  # a view handed out
    ptr = first.data_ptr()
    del first
    second = result_buffer((2, 7))
    assert second.untyped_storage().data_ptr() != held.untyped_storage().data_ptr()
    second.fill_(2.0)
    assert torch.equal(held, torch.ones(7))  # the held view was not written over
    del held, second
    assert result_buffer((2, 7)).data_ptr() == ptr  # nothing holds it any more: reused


def test_result_buffer_reuse_needs_every_view_gone():
    buf = result_buffer((3, 4))
    ptr = buf.data_ptr()
    assert result_buffer((3, 4)).data_ptr() != ptr  # the handed tensor itself is held
    row = buf[0].clone()
    sub = buf[0][1:]  # a view of a view
    del buf
    assert result_buffer((3, 4)).data_ptr() != ptr
    del sub, row


@pytest.mark.parametrize(
    "kind",
    ["shot_noise", "impulse_noise", "brightness", "contrast", "fog", "frost", "snow", "pixelate",
     "motion_blur", "glass_blur", "zoom_blur", "jpeg_compression"],
)  # fmt: skip
@pytest.mark.parametrize("layout", ["chw", "hwc"])
def test_results_held_across_calls_keep_their_values(kind, layout):
    """A result still held when the next call runs is not a buffer that call writes into."""
    images = [torch.rand(3, 40, 56), torch.rand(3, 40, 56)]
    images = _hwc(images) if layout == "hwc" else images
    SEED_MEMO.clear()
    held = Perturbation(kind, 2.0, seed=1).apply(images).images
    copies = [h.clone() for h in held]
    for s in (1, 3, 5):
        Perturbation(kind, float(s), seed=2).apply([torch.rand(3, 40, 56) for _ in images])
    assert all(torch.equal(h, c) for h, c in zip(held, copies, strict=True))
    SEED_MEMO.clear()


@pytest.mark.parametrize("kind", sorted(CHANNELS_LAST))
def test_channels_last_batch_gives_the_plain_batch_results(kind):
    """HWC-memory images get a channels-last batch for these kinds: the same values as CHW
    images, in the images' own layout, for a whole sweep (zoom blur's hand-overs included)."""
    images = [torch.rand(3, 36, 52), torch.rand(3, 36, 52)]
    SEED_MEMO.clear()
    plain = [Perturbation(kind, float(s), seed=4).apply(images).images for s in range(1, 6)]
    SEED_MEMO.clear()
    hwc = _hwc(images)
    last = [Perturbation(kind, float(s), seed=4).apply(hwc).images for s in range(1, 6)]
    SEED_MEMO.clear()
    for a, b in zip(plain, last, strict=True):
        assert all(torch.equal(p, q) for p, q in zip(a, b, strict=True))
        assert all(q.stride(0) == 1 for q in b) and all(p.is_contiguous() for p in a)


def test_zoom_hand_overs_keep_a_copy_of_a_channels_last_batch():
    """With HWC images the batch buffer itself is the channels-last image zoom blur works on:
    what it keeps to check later severities against is a copy, not the reused buffer (which
    would hold the next images and pass them a, for them, wrong hand-over)."""
    a, b = _hwc([torch.rand(3, 40, 56)]), _hwc([torch.rand(3, 40, 56)])
    SEED_MEMO.clear()
    Perturbation("zoom_blur", 1.0, seed=0).apply(a)
    got = Perturbation("zoom_blur", 2.0, seed=0).apply(b).images[0]  # other images, same seed
    SEED_MEMO.clear()
    assert torch.equal(got, Perturbation("zoom_blur", 2.0, seed=0).apply(b).images[0])
    SEED_MEMO.clear()


def test_result_buffers_of_other_shapes_make_room_once_free(monkeypatch):
    monkeypatch.setattr(context, "SCRATCH_MAX_BYTES", 3 * 400)
    monkeypatch.setattr(context._WORK, "results", [], raising=False)
    monkeypatch.setattr(context._WORK, "bufs", {}, raising=False)
    a = result_buffer((100,))
    b = result_buffer((200,))  # kept too: 1200 bytes in all
    del b
    c = result_buffer((150,))  # room from b (free), not from a (held)
    kept = [t.data_ptr() for t, _ in context._WORK.results]
    assert sorted(kept) == sorted([a.data_ptr(), c.data_ptr()])


def test_flat_scratch_serves_smaller_requests_from_its_start():
    big = scratch("test.flat", (10,))
    small = scratch("test.flat", (6,))
    assert small.data_ptr() == big.data_ptr() and small.shape == (6,)
    assert scratch("test.flat", (12,)).numel() == 12  # larger: a new buffer


def test_padded_copy_into_the_kept_buffer_equals_a_fresh_one():
    from pytest_kpmodel.robustness.ops.filters import pad_channels_last

    x = torch.rand(2, 3, 9, 11)
    for ph, pw in ((2, 3), (1, 1), (3, 0)):
        fresh = pad_channels_last(x, ph, pw, "replicate")
        kept = pad_channels_last(x, ph, pw, "replicate", work=True)
        assert torch.equal(fresh, kept)
        assert kept.is_contiguous(memory_format=torch.channels_last)


def test_glass_blur_of_one_channel_with_a_one_tap_blur_is_not_a_kept_buffer():
    images = [torch.rand(1, 20, 24)]
    kw = {"sigma": 0.1, "max_delta": 1, "iterations": 1}
    first = Perturbation("glass_blur", 1.0, params=kw, seed=0).apply(images).images[0]
    copy = first.clone()
    Perturbation("glass_blur", 1.0, params=kw, seed=1).apply([torch.rand(1, 20, 24)])
    assert torch.equal(first, copy)


def test_defocus_two_step_inverse_into_kept_buffers_equals_irfft2():
    """Defocus blur's inverse FFT runs as its two steps into kept buffers: bit-identical to
    ``irfft2`` of the image spectrum times the disk's, at every severity."""
    from pytest_kpmodel.robustness.kinds import params_for
    from pytest_kpmodel.robustness.ops.blur import DEFOCUS_PAD, _disk_spectrum
    from pytest_kpmodel.robustness.ops.filters import disk_kernel, good_fft_size, pad

    images = [torch.rand(3, 45, 61), torch.rand(3, 45, 61)]
    x = torch.stack(images)
    size = (good_fft_size(45 + 2 * DEFOCUS_PAD), good_fft_size(61 + 2 * DEFOCUS_PAD))
    spectrum = torch.fft.rfft2(pad(x, DEFOCUS_PAD, DEFOCUS_PAD, "reflect101"), s=size)
    SEED_MEMO.clear()
    for s in range(1, 6):
        p = params_for("defocus_blur", s)
        half = disk_kernel(p["radius"], p["alias_blur"], "cpu").shape[-1] // 2
        disk = _disk_spectrum(p["radius"], p["alias_blur"], size, torch.device("cpu"))
        y = torch.fft.irfft2(spectrum * disk, s=size)
        top = DEFOCUS_PAD + half
        want = y[..., top : top + 45, top : top + 61].clamp(0, 1)
        got = Perturbation("defocus_blur", float(s)).apply(images).images
        assert all(torch.equal(g, w) for g, w in zip(got, want, strict=True)), s
    SEED_MEMO.clear()


def test_pixelate_into_a_kept_buffer_equals_interpolate(monkeypatch):
    from pytest_kpmodel.robustness.ops import digital

    images = [torch.rand(3, 50, 70), torch.rand(3, 50, 70)]
    kept = [Perturbation("pixelate", float(s)).apply(images).images for s in range(1, 6)]
    monkeypatch.setattr(digital, "_NEAREST_EXACT_OUT", None)  # F.interpolate
    for s in range(1, 6):
        plain = Perturbation("pixelate", float(s)).apply(images).images
        assert all(torch.equal(a, b) for a, b in zip(kept[s - 1], plain, strict=True)), s


@pytest.mark.parametrize("channels", [2, 3])
@pytest.mark.parametrize("taps", [3, 9, 13, 33])
def test_column_pass_over_wide_channels_equals_the_depthwise_convolution(channels, taps):
    import torch.nn.functional as F

    from pytest_kpmodel.robustness.ops.filters import _column_pass

    y = torch.rand(2, channels, 40 + taps, 37).contiguous(memory_format=torch.channels_last)
    k = torch.rand(taps)
    want = F.conv2d(y, k.view(1, 1, -1, 1).repeat(channels, 1, 1, 1), groups=channels)
    got = _column_pass(y, k)
    assert torch.equal(got, want)
    assert got.is_contiguous(memory_format=torch.channels_last)


def test_batch_buffer_is_refilled_when_an_image_changes_in_place():
    images = [torch.rand(3, 30, 40), torch.rand(3, 30, 40)]
    first = Perturbation("contrast", 2.0).apply(images).images[0].clone()
    images[0].mul_(0.5)  # in place: the same tensor object, a new version
    got = Perturbation("contrast", 2.0).apply(images).images[0]
    want = Perturbation("contrast", 2.0).apply([images[0].clone()]).images[0]
    assert torch.equal(got, want) and not torch.equal(got, first)
    view = images[1][0]  # through a view: the version counter is shared
    Perturbation("contrast", 2.0).apply(images)
    view.fill_(0.25)
    got = Perturbation("contrast", 2.0).apply(images).images[1]
    assert torch.equal(got, Perturbation("contrast", 2.0).apply([images[1].clone()]).images[0])


def test_batch_buffer_is_refilled_after_a_kernel_wrote_into_it(monkeypatch):
    from pytest_kpmodel.robustness.ops import apply

    images = [torch.rand(3, 30, 40)]
    want = Perturbation("contrast", 2.0).apply(images).images[0].clone()
    monkeypatch.setitem(apply.KERNELS, "brightness", lambda x, p, ctx: x.mul_(0.0).add_(1.0))
    Perturbation("brightness", 0.1).apply(images)  # same images, the batch written over
    monkeypatch.undo()
    assert torch.equal(Perturbation("contrast", 2.0).apply(images).images[0], want)


def test_batch_buffer_holds_the_same_images_without_a_new_copy():
    from pytest_kpmodel.robustness.ops import apply

    images = [torch.rand(3, 30, 40), torch.rand(3, 30, 40)]
    Perturbation("contrast", 2.0).apply(images)
    buf = apply._SCRATCH.batches[False]
    assert apply._holds(buf, images, [0, 1])
    assert not apply._holds(buf, [images[0], images[1].clone()], [0, 1])
    hwc = _hwc(images)  # a channels-last kind: its own buffer, the plain one still held
    Perturbation("zoom_blur", 1.0).apply(hwc)
    assert apply._holds(apply._SCRATCH.batches[True], hwc, [0, 1]) and apply._holds(
        buf, images, [0, 1]
    )


def test_inference_tensors_are_always_copied_into_the_batch():
    with torch.inference_mode():
        images = [torch.rand(3, 30, 40)]
        Perturbation("contrast", 2.0).apply(images)
        images[0].mul_(0.5)  # inference tensors count no versions
        got = Perturbation("contrast", 2.0).apply(images).images[0]
        want = Perturbation("contrast", 2.0).apply([images[0].clone()]).images[0]
    assert torch.equal(got, want)


def test_elastic_grid_built_in_kept_buffers_equals_the_stacked_grid():
    import torch.nn.functional as F

    from pytest_kpmodel.robustness.kinds import params_for
    from pytest_kpmodel.robustness.ops.context import Ctx, image_seed
    from pytest_kpmodel.robustness.ops.digital import _displacement

    images = [torch.rand(3, 36, 50), torch.rand(3, 36, 50)]
    seeds = [image_seed(5, i, "elastic_transform") for i in range(2)]
    field = _displacement(Ctx(seeds, torch.device("cpu")), 36, 50, 36 * 0.005, (0.36, 0.5))
    rows = torch.arange(36.0).view(1, 36, 1).expand(2, 36, 50)
    cols = torch.arange(50.0).view(1, 1, 50).expand(2, 36, 50)
    SEED_MEMO.clear()
    for s in (1, 5):
        a = params_for("elastic_transform", s)["alpha"]
        gx = (field[:, 0] * a + cols) * 2 + 1
        gy = (field[:, 1] * a + rows) * 2 + 1
        grid = torch.stack([gx / 50 - 1, gy / 36 - 1], dim=-1)
        want = F.grid_sample(
            torch.stack(images), grid, padding_mode="reflection", align_corners=False
        )
        got = Perturbation("elastic_transform", float(s), seed=5).apply(images).images
        assert all(torch.equal(g, w) for g, w in zip(got, want.clamp(0, 1), strict=True)), s
    SEED_MEMO.clear()


@pytest.mark.parametrize("crop", [(37, 50), (64, 64), (1, 1), (33, 64)])
def test_plasma_fractal_cropped_at_the_last_level_equals_the_cropped_map(crop):
    from pytest_kpmodel.robustness.ops.context import Rng
    from pytest_kpmodel.robustness.ops.textures import plasma_draws, plasma_fractal

    draws = plasma_draws(Rng([1, 2], torch.device("cpu")), 64)
    rng = Rng([1, 2], torch.device("cpu"))
    whole = plasma_fractal(rng, 64, 1.7, draws=draws)
    cropped = plasma_fractal(rng, 64, 1.7, crop, draws=draws)
    assert torch.equal(cropped, whole[:, : crop[0], : crop[1]])


@pytest.mark.parametrize(("ph", "pw"), [(3, 3), (0, 2), (4, 0), (7, 5)])
def test_replicate_padding_into_the_kept_buffer_equals_pad(ph, pw):
    from pytest_kpmodel.robustness.ops.filters import pad, pad_replicate_work

    x = torch.rand(2, 3, 9, 11)
    assert torch.equal(pad_replicate_work(x, ph, pw), pad(x, ph, pw, "replicate"))
    y = torch.rand(2, 1, 6, 8)  # another size reuses the same flat buffer
    assert torch.equal(pad_replicate_work(y, ph, pw), pad(y, ph, pw, "replicate"))


def test_motion_blur_into_a_given_buffer_equals_a_fresh_one():
    from pytest_kpmodel.robustness.ops.filters import motion_blur_batch

    x = torch.rand(2, 1, 30, 40)
    angles = torch.tensor([-60.0, -100.0])
    out = torch.full_like(x, 7.0)  # stale contents must not leak in
    got = motion_blur_batch(x, 3, 1.5, angles, out=out)
    assert got.data_ptr() == out.data_ptr()
    assert torch.equal(got, motion_blur_batch(x, 3, 1.5, angles))


@pytest.mark.parametrize("n", [4, 16, 36, 64])
def test_codes_are_the_same_values_in_int32(n):
    from pytest_kpmodel.robustness.ops.context import Rng

    wide = Rng([3, 4], torch.device("cpu")).codes(n, (50,))
    narrow = Rng([3, 4], torch.device("cpu")).codes(n, (50,), torch.int32)
    assert narrow.dtype == torch.int32 and torch.equal(narrow.long(), wide)


def test_glass_sources_composed_in_int32_equal_the_int64_gathers():
    from pytest_kpmodel.robustness.ops.blur import _shuffle_index, _shuffled_sources
    from pytest_kpmodel.robustness.ops.context import Ctx

    cpu = torch.device("cpu")
    got = _shuffled_sources(Ctx([7, 8], cpu), 2, 20, 30, 2, 3, cpu)
    ctx = Ctx([7, 8], cpu)
    steps = [_shuffle_index(ctx, 20, 30, 2, cpu).long() for _ in range(3)]
    want = steps[0].gather(1, steps[1]).gather(1, steps[2])
    assert got.dtype == torch.int32 and torch.equal(got.long(), want)
