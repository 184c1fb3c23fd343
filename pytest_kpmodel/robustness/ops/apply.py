"""The entry point: :func:`apply_kind` applies one kind to a list of CHW images, grouped by
size and batched per group, with the kernel the kind names in ``KERNELS``.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Sequence
from typing import Any

import torch

from pytest_kpmodel.robustness.geometry import AffineTransform

from . import blur, digital, geometric, noise, occlusion, photometric, weather
from .context import Ctx, Kernel, image_seed, release_work_buffers

KERNELS: dict[str, Kernel] = {
    **photometric.KERNELS,
    **noise.KERNELS,
    **blur.KERNELS,
    **digital.KERNELS,
    **weather.KERNELS,
    **occlusion.KERNELS,
    **geometric.KERNELS,
}


_SCRATCH = threading.local()


def _batch(
    images: Sequence[torch.Tensor], members: list[int], device: torch.device, channels_last: bool
) -> torch.Tensor:
    """A size group's images as one float32 batch. On the CPU it is written into a buffer
    kept per thread and layout for the next call of the same shape (a sweep's calls all have it): a fresh
    batch-sized buffer costs more in page faults than the arithmetic of a cheap kernel, and with
    the input buffer kept, the freed output of one call is reused by the next instead of the
    allocator handing both back to the system. Kernels never keep their batch (what they keep,
    they copy), and one that returns it (or a view of it) gets a copy returned. With
    ``channels_last`` the buffer is in that layout (see :func:`_wants_channels_last`)."""
    shape = (len(members), *images[members[0]].shape)
    if device.type != "cpu":
        return torch.stack([images[i] for i in members]).to(torch.float32)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    # one buffer per layout: kinds of both layouts alternate without reallocating
    batches: dict[bool, torch.Tensor] = _SCRATCH.__dict__.setdefault("batches", {})
    buf = batches.get(channels_last)
    if buf is None or tuple(buf.shape) != shape or not buf.is_contiguous(memory_format=fmt):
        buf = batches[channels_last] = torch.empty(shape, dtype=torch.float32, memory_format=fmt)
    if _holds(buf, images, members):
        return buf
    for j, i in enumerate(members):
        buf[j].copy_(images[i])
    _SCRATCH.__dict__.setdefault("filled", {})[channels_last] = _fill_record(buf, images, members)
    return buf


def release_buffers() -> None:
    """Drop every buffer kept on this thread between calls: the batches and the kernels' work
    and result buffers (a sweep calls this when it is done)."""
    _SCRATCH.__dict__.clear()
    release_work_buffers()


# Whether a batch buffer that already holds the same images is handed on without copying them
# again (the benchmark's "before" side turns it off).
REUSE_BATCH = True


def _fill_record(buf: torch.Tensor, images: Sequence[torch.Tensor], members: list[int]):
    """What :func:`_holds` checks: the buffer and its version counter after the copy, and each
    image (a weak reference: the very tensor object), its version counter, data pointer and
    strides. None for inference tensors, which count no versions."""
    if buf.is_inference() or any(images[i].is_inference() for i in members):
        return None
    srcs = [(weakref.ref(images[i]), images[i]._version, images[i].data_ptr(), images[i].stride())
            for i in members]  # fmt: skip
    return buf, buf._version, srcs


def _holds(buf: torch.Tensor, images: Sequence[torch.Tensor], members: list[int]) -> bool:
    """Whether ``buf`` still holds exactly these images: a sweep applies 75 corruption x
    severity calls to the same image tensors, and the transposing copy of HWC images into the
    batch is about a tenth of a call. True only for the same tensor objects, none modified in
    place since (torch's version counters, which every in-place write to a tensor or a view of
    it bumps; memory written behind torch's back, through numpy for instance, is not seen) and
    the buffer not written to by a kernel either."""
    filled = next((f for f in getattr(_SCRATCH, "filled", {}).values() if f and f[0] is buf), None)
    if not REUSE_BATCH or filled is None or filled[0] is not buf or buf._version != filled[1]:
        return False
    srcs = filled[2]
    if len(srcs) != len(members):
        return False
    for (ref, version, ptr, stride), i in zip(srcs, members, strict=True):
        img = images[i]
        if ref() is not img or img._version != version or img.data_ptr() != ptr:
            return False
        if img.stride() != stride:
            return False
    return True


# Kernels whose work runs in channels-last layout (torch's bilinear resize and depthwise
# convolutions on the CPU, PIL's HWC bytes).
CHANNELS_LAST = blur.CHANNELS_LAST | digital.CHANNELS_LAST


def _wants_channels_last(kind: str, images: Sequence[torch.Tensor], members: list[int]) -> bool:
    """A channels-last batch for a kind that works in that layout, when its images already are
    (HWC memory, as images decoded from files usually are): the batch is then a plain copy
    instead of a transposing one (about 4x faster with 3 channels), the kernel converts
    nothing, and the results come back in the images' own layout."""
    return kind in CHANNELS_LAST and all(
        images[i].shape[0] > 1 and images[i].stride(0) == 1 for i in members
    )


def apply_kind(
    kind: str,
    params: dict[str, Any],
    images: Sequence[torch.Tensor],
    *,
    seed: int,
    indices: Sequence[int],
    boxes: Sequence[torch.Tensor | None] | None = None,
) -> tuple[list[torch.Tensor], list[AffineTransform | None]]:
    """Apply one kind to a list of CHW images (grouped by size, batched per group)."""
    fn = KERNELS[kind]
    out: list[torch.Tensor | None] = [None] * len(images)
    transforms: list[AffineTransform | None] = [None] * len(images)
    groups: dict[tuple[Any, ...], list[int]] = {}
    for i, img in enumerate(images):
        if img.ndim != 3 or not img.is_floating_point():
            raise ValueError(
                f"image {i}: expected a CHW float tensor in [0, 1], got "
                f"{img.dtype} of shape {tuple(img.shape)}"
            )
        groups.setdefault((tuple(img.shape), img.device, img.dtype), []).append(i)
    for (_, device, dtype), members in groups.items():
        x = _batch(images, members, device, _wants_channels_last(kind, images, members))
        ctx = Ctx(
            seeds=[image_seed(seed, indices[i], kind) for i in members],
            device=device,
            boxes=None if boxes is None else [boxes[i] for i in members],
        )
        with torch.no_grad():
            result = fn(x, params, ctx)
        y, t = result if isinstance(result, tuple) else (result, None)
        if y.untyped_storage().data_ptr() == x.untyped_storage().data_ptr():
            y = y.clone()  # the batch (or a view of it) came back: the buffer is reused
        y = y.to(dtype)
        for j, i in enumerate(members):
            out[i] = y[j]
            transforms[i] = t
    return [o for o in out if o is not None], transforms
