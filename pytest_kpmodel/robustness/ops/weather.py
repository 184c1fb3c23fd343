"""Weather kernels: fog, frost and snow."""

from __future__ import annotations

import torch

from .context import SEED_MEMO, Kernel, kernel_angles, result_like, work
from .filters import clipped_zoom, motion_blur_batch, next_pow2, to_gray
from .textures import frost_texture, plasma_draws, plasma_fractal


def _fog(x, p, ctx):
    amount = p["amount"]
    if amount == 0:
        return x
    b, c, h, w = x.shape
    mapsize = next_pow2(max(h, w, c))
    decay = p["decay"]
    # The haze is a function of the seeds, the size and the decay: severities 1 and 2 share
    # decay 2, so a sweep makes it four times instead of five; its uniform draws do not depend
    # on the decay, so it draws them once.
    seeds, dev = tuple(ctx.seeds), str(x.device)

    def haze_for_decay() -> torch.Tensor:
        draws = SEED_MEMO.get(
            ("fog", "draws", seeds, mapsize, dev), lambda: plasma_draws(ctx.rng, mapsize)
        )
        return plasma_fractal(ctx.rng, mapsize, decay, (h, w), draws=draws)

    haze = SEED_MEMO.get(("fog", seeds, mapsize, h, w, decay, dev), haze_for_decay)
    max_val = x.flatten(1).amax(1).view(-1, 1, 1, 1)
    y = torch.add(x, haze.unsqueeze(1), alpha=amount, out=result_like(x))
    return y.mul_(max_val / (max_val + amount)).clamp_(0, 1)


def _frost(x, p, ctx):
    if p["frost"] == 0 and p["image"] == 1:
        return x
    b, c, h, w = x.shape
    # A function of the images' seeds and size only: the same at every severity of a sweep.
    key = ("frost", tuple(ctx.seeds), c, h, w, str(x.device))
    tex = SEED_MEMO.get(key, lambda: frost_texture(ctx.rng, h, w, c))
    y = torch.mul(x, p["image"], out=result_like(x))
    return y.add_(tex, alpha=p["frost"]).clamp_(0, 1)


def _snow(x, p, ctx):
    b, c, h, w = x.shape

    def draws() -> tuple[torch.Tensor, torch.Tensor]:
        return ctx.rng.normal((1, h, w)), kernel_angles(ctx, b, None, -135.0, -45.0)

    # The flakes' standard normal draws and the drawn angles depend on the seeds only (the
    # severity scales and shifts them): drawn once for a sweep's severities.
    z, drawn = SEED_MEMO.get(("snow", tuple(ctx.seeds), h, w, str(x.device)), draws)
    layer = torch.mul(z, p["scale"]).add_(p["loc"])
    layer = clipped_zoom(layer, p["zoom"])  # a new tensor or a view of one: ours to change
    layer = layer.masked_fill_(layer < p["threshold"], 0.0).clamp_(0, 1)
    angles = drawn if p["angle"] is None else kernel_angles(ctx, b, p["angle"], 0.0, 0.0)
    # the blurred flakes are a temporary (added to the result below): a kept buffer
    blurred = work(1, layer.shape, layer.dtype, layer.device)
    layer = motion_blur_batch(layer, p["radius"], p["sigma"], angles, out=blurred)
    layer = layer.clamp_(0, 1).mul_(255).round_().div_(255)
    blend = p["blend"]
    # One three-channel buffer, the rest in place (a fresh large buffer costs its page faults):
    # blend * x + (1 - blend) * max(x, 1.5 gray + 0.5), then the flakes and their mirror image.
    whitened = torch.maximum(x, to_gray(x).mul_(1.5).add_(0.5), out=result_like(x))
    y = whitened.mul_(1 - blend).add_(x, alpha=blend)
    return y.add_(layer).add_(layer.flip(-2, -1)).clamp_(0, 1)


KERNELS: dict[str, Kernel] = {
    "fog": _fog,
    "frost": _frost,
    "snow": _snow,
}
