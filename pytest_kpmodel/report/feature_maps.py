"""Backbone feature maps: does the backbone respond to your images' content?

For a few evaluation images, run the model's own preprocessing and backbone (torchvision
``GeneralizedRCNN``: ``module.transform`` then ``module.backbone``, an ``OrderedDict`` of FPN
levels) and show, per level, the per-pixel maximum and mean over channels next to the image.
Features that light up on people and stay quiet on background suit the data; flat, saturated
or mostly dead maps do not. With a ``base_model`` the base's maps are shown under the model's,
on the same colour scale per level and statistic, and ``meta`` gets the cosine similarity of
the two models' features per level (when the shapes agree).

    arts = render_feature_maps(model, images, report_dir, base_model=None)

``model``: a ``KeypointModel`` wrapping a torchvision detection module (``.module``) or the
module itself. Models without ``transform``/``backbone`` (ONNX, opaque exports) give one note
entry (``meta.skipped``) instead of figures. Torch and matplotlib are imported lazily; figures
use the Agg canvas directly (no pyplot state, nothing shown).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .assets import artifact, save_png_bytes

DPI = 90


def detection_module(model: Any) -> Any | None:
    """The torchvision-style module behind ``model`` (None when it has no backbone)."""
    for candidate in (getattr(model, "module", None), model):
        if candidate is None:
            continue
        if hasattr(candidate, "transform") and hasattr(candidate, "backbone"):
            return candidate
    return None


def _float_image(image: Any):
    import torch

    if not isinstance(image, torch.Tensor):
        from .gallery import to_pil

        arr = np.asarray(to_pil(image), dtype=np.float32) / 255.0
        return torch.from_numpy(arr).permute(2, 0, 1).contiguous()
    if image.is_floating_point():
        return image.detach().float()
    return image.detach().float() / 255.0


def backbone_features(model: Any, image: Any) -> dict[str, Any]:
    """``{"levels": {name: tensor [C, h, w]}, "image": float CHW [0, 1] as the backbone saw
    it (resized, unnormalised)}`` for one image; padding is cropped away."""
    import torch

    module = detection_module(model)
    if module is None:
        raise TypeError("the model has no transform/backbone (not a torchvision detector)")
    try:
        device = next(module.parameters()).device
    except (StopIteration, AttributeError, TypeError):
        device = torch.device(getattr(model, "device", "cpu"))
    x = _float_image(image).to(device)
    with torch.inference_mode():
        batch, _ = module.transform([x])
        feats = module.backbone(batch.tensors)
    if isinstance(feats, torch.Tensor):
        feats = {"0": feats}
    h, w = batch.image_sizes[0]
    ph, pw = batch.tensors.shape[-2:]
    levels = {}
    for name, f in feats.items():
        f = f[0].detach().float().cpu()
        fh = max(1, int(np.ceil(f.shape[-2] * h / ph)))
        fw = max(1, int(np.ceil(f.shape[-1] * w / pw)))
        levels[str(name)] = f[:, :fh, :fw]
    seen = batch.tensors[0, :, :h, :w].detach().float().cpu()
    mean = getattr(module.transform, "image_mean", None)
    std = getattr(module.transform, "image_std", None)
    if mean is not None and std is not None:
        seen = seen * torch.tensor(std).view(-1, 1, 1) + torch.tensor(mean).view(-1, 1, 1)
    return {"levels": levels, "image": seen.clamp(0, 1)}


def level_stats(f) -> dict[str, Any]:
    """Shape, mean/max activation and the share of channels that are zero everywhere."""
    flat = f.reshape(f.shape[0], -1)
    dead = (flat.abs().amax(dim=1) == 0).float().mean()
    return {
        "shape": list(f.shape),
        "mean": float(f.mean()),
        "max": float(f.max()),
        "dead_channels": float(dead),
    }


def _cosine(a, b) -> float | None:
    if a.shape != b.shape:
        return None
    a, b = a.reshape(-1).double(), b.reshape(-1).double()
    den = float(a.norm() * b.norm())
    return float(a @ b) / den if den > 0 else None


def _figure_png(image, rows: list[tuple[str, dict[str, Any]]], title: str) -> bytes:
    """rows: (label, levels) pairs; per level two rows of panels (max, mean over channels)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    names = list(rows[0][1])
    grid = [(label, stat, levels) for label, levels in rows for stat in ("max", "mean")]
    ncols = 1 + len(names)
    fig = Figure(figsize=(1.9 * ncols, 1.75 * len(grid) + 0.45), dpi=DPI)
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(grid), ncols, squeeze=False)
    maps = {
        (r, name): (levels[name].amax(0) if stat == "max" else levels[name].mean(0)).numpy()
        for r, (_, stat, levels) in enumerate(grid)
        for name in names
        if name in levels
    }
    scale = {}
    for stat in ("max", "mean"):
        for name in names:
            vals = [m for (r, n), m in maps.items() if n == name and grid[r][1] == stat]
            lo = min(float(np.percentile(v, 1)) for v in vals)
            hi = max(float(np.percentile(v, 99)) for v in vals)
            scale[stat, name] = (lo, hi if hi > lo else lo + 1e-6)
    img = image.permute(1, 2, 0).numpy()
    for r, (label, stat, _) in enumerate(grid):
        first = axes[r][0]
        first.set_xticks([])
        first.set_yticks([])
        if stat == "max":
            first.imshow(img)
            first.set_title("image" if r == 0 else "", fontsize=8)
            first.set_ylabel(label, fontsize=9, fontweight="bold")
        else:
            first.axis("off")
        for c, name in enumerate(names, start=1):
            ax = axes[r][c]
            ax.set_xticks([])
            ax.set_yticks([])
            m = maps.get((r, name))
            if m is None:
                ax.axis("off")
                continue
            lo, hi = scale[stat, name]
            ax.imshow(m, cmap="magma", vmin=lo, vmax=hi, interpolation="nearest")
            ax.set_title(f"{name} {stat}  [{lo:.2g}, {hi:.2g}]", fontsize=7)
            if c == 1:
                ax.set_ylabel(f"{stat} over channels", fontsize=7)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    return buf.getvalue()


def render_feature_maps(
    model: Any,
    images: Sequence[Any],
    folder: str | Path,
    base_model: Any | None = None,
    *,
    image_ids: Sequence[Any] | None = None,
    labels: tuple[str, str] = ("model", "base"),
) -> list[dict[str, Any]]:
    """One figure per image into ``folder/images/feature-maps-*.png``; their artifact entries
    (``kind="feature_maps"``; ``meta``: image_id, per-level stats for the model and the base,
    per-level cosine similarity model vs base)."""
    folder = Path(folder)
    if detection_module(model) is None:
        reason = (
            f"{type(getattr(model, 'module', model)).__name__} has no transform/backbone "
            "(feature maps need a torchvision-style detector)"
        )
        return [artifact("feature_maps", "backbone feature maps", None, {"skipped": reason})]
    if base_model is not None and detection_module(base_model) is None:
        base_model = None
    out = []
    for i, image in enumerate(images):
        image_id = image_ids[i] if image_ids is not None else i
        got = backbone_features(model, image)
        rows = [(labels[0], got["levels"])]
        meta: dict[str, Any] = {
            "image_id": image_id,
            "levels": {n: level_stats(f) for n, f in got["levels"].items()},
        }
        if base_model is not None:
            base = backbone_features(base_model, image)
            rows.append((labels[1], base["levels"]))
            meta["base_levels"] = {n: level_stats(f) for n, f in base["levels"].items()}
            meta["cosine_to_base"] = {
                n: _cosine(f, base["levels"][n])
                for n, f in got["levels"].items()
                if n in base["levels"]
            }
        pair = f" ({labels[0]} vs {labels[1]})" if base_model is not None else ""
        title = f"backbone feature maps, image {image_id}{pair}"
        png = _figure_png(got["image"], rows, title)
        out.append(save_png_bytes(png, folder, f"feature-maps-{i}", "feature_maps", title, meta))
    return out
