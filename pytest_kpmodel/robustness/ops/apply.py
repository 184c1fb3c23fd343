"""The entry point: :func:`apply_kind` applies one kind to a list of CHW images, grouped by
size and batched per group, with the kernel the kind names in ``KERNELS``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from pytest_kpmodel.robustness.geometry import AffineTransform

from . import blur, digital, geometric, noise, occlusion, photometric, weather
from .context import Ctx, Kernel, image_seed

KERNELS: dict[str, Kernel] = {
    **photometric.KERNELS,
    **noise.KERNELS,
    **blur.KERNELS,
    **digital.KERNELS,
    **weather.KERNELS,
    **occlusion.KERNELS,
    **geometric.KERNELS,
}


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
        x = torch.stack([images[i] for i in members]).to(torch.float32)
        ctx = Ctx(
            seeds=[image_seed(seed, indices[i], kind) for i in members],
            device=device,
            boxes=None if boxes is None else [boxes[i] for i in members],
        )
        with torch.no_grad():
            result = fn(x, params, ctx)
        y, t = result if isinstance(result, tuple) else (result, None)
        y = y.to(dtype)
        for j, i in enumerate(members):
            out[i] = y[j]
            transforms[i] = t
    return [o for o in out if o is not None], transforms
