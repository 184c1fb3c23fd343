"""The occlusion kernel: one rectangle per person box (the whole image when none is known)."""

from __future__ import annotations

import math

import torch

from .context import Kernel


def _occlusion(x, p, ctx):
    area = p["area"]
    if area <= 0:
        return x
    b, c, h, w = x.shape
    out = x.clone()
    colour = torch.tensor(p["colour"], dtype=x.dtype, device=x.device)[:c].view(c, 1, 1)
    if colour.shape[0] < c:
        colour = colour.expand(c, 1, 1)
    for i in range(b):
        boxes = None if ctx.boxes is None else ctx.boxes[i]
        if boxes is None or len(boxes) == 0:
            boxes = torch.tensor([[0.0, 0.0, float(w), float(h)]])
        gen = None
        for box in boxes[:8].tolist():
            x1, y1, x2, y2 = box
            bw, bh = max(x2 - x1, 1.0), max(y2 - y1, 1.0)
            rw, rh = math.sqrt(area) * bw, math.sqrt(area) * bh
            cy = y1 + p["y"] * bh
            if p["placement"] == "beside":
                left = x2 if p["x"] >= 0.5 else x1 - rw
            else:
                left = x1 + p["x"] * bw - rw / 2
            top = cy - rh / 2
            c0, c1 = max(0, round(left)), min(w, round(left + rw))
            r0, r1 = max(0, round(top)), min(h, round(top + rh))
            if c1 <= c0 or r1 <= r0:
                continue
            ph, pw = r1 - r0, c1 - c0
            texture = p["texture"]
            if texture == "noise":
                if gen is None:
                    gen = torch.Generator(device=x.device).manual_seed(ctx.seeds[i])
                patch = torch.rand((c, ph, pw), generator=gen, device=x.device, dtype=x.dtype)
            else:
                patch = colour.expand(c, ph, pw).clone()
                if texture in ("stripes", "checker"):
                    yy = torch.arange(ph, device=x.device).view(ph, 1) // 4
                    xx = torch.arange(pw, device=x.device).view(1, pw) // 4
                    odd = (xx % 2 == 1) if texture == "stripes" else ((xx + yy) % 2 == 1)
                    patch = torch.where(odd.expand(c, ph, pw), 1 - patch, patch)
            out[i, :, r0:r1, c0:c1] = patch
    return out


KERNELS: dict[str, Kernel] = {
    "occlusion": _occlusion,
}
