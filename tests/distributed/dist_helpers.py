"""Launching pytest (and scripts) under torchrun and xdist from the distributed tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch

from pytest_kpmodel.adapters.base import Prediction

# Variables of the test run itself (xdist worker ids, a torchrun around us) must not leak into
# the runs the tests start.
_LEAKY = ("PYTEST_", "RANK", "LOCAL_", "WORLD_SIZE", "GROUP_", "ROLE_", "MASTER_", "TORCHELASTIC",
          "KPMODEL_DIST_", "OMP_NUM_THREADS", "CUDA_VISIBLE_DEVICES")  # fmt: skip


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_LEAKY)}
    env["OMP_NUM_THREADS"] = "1"  # one thread per process: 2 loaded cores, no oversubscription
    env["CUDA_VISIBLE_DEVICES"] = ""  # gloo on the CPU, also on a machine with GPUs
    env.update(extra)
    return env


def torchrun(nproc: int, *args: str) -> list[str]:
    """``torchrun --standalone`` picks a free port itself (no --master_port race)."""
    return [sys.executable, "-m", "torch.distributed.run", "--standalone",
            f"--nproc_per_node={nproc}", *args]  # fmt: skip


def run(cmd: list[str], cwd: Path, timeout: float = 300, **env: str):
    proc = subprocess.run(cmd, cwd=cwd, env=clean_env(**env), capture_output=True, text=True,
                          timeout=timeout)  # fmt: skip
    return proc


def explain(proc) -> str:
    return f"exit {proc.returncode}\n--- stdout\n{proc.stdout[-6000:]}\n--- stderr\n{proc.stderr[-4000:]}"


def make_varied_dataset(folder: Path, n: int = 8) -> Path:
    """A COCO set whose images alternate landscape 96x72 / portrait 72x120 (so batches pad, and
    an image's predictions depend on its batch neighbours) and whose ground truth is the tiny
    random model's own top detections, jittered: AP is neither 0 nor 1, and every metric moves
    if a prediction does."""
    import numpy as np
    import torch
    from PIL import Image

    from kp_factories import make_dataset, tiny_module
    from pytest_kpmodel.data import decode_image

    ann = make_dataset(folder, n=n)
    coco = json.loads(ann.read_text())
    rng = np.random.default_rng(7)
    for im in coco["images"][1::2]:
        w, h = 72, 120
        pixels = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / "images" / im["file_name"], quality=90)
        im["width"], im["height"] = w, h
    module = tiny_module(0)
    anns = []
    with torch.inference_mode():
        for im in coco["images"]:
            pixels, _ = decode_image(folder / "images" / im["file_name"])
            out = module([pixels.float() / 255])[0]
            for box, kps in list(zip(out["boxes"], out["keypoints"], strict=True))[:2]:
                x0, y0, x1, y1 = (float(v) for v in box)
                pts = kps[:, :2].numpy() + rng.normal(0, 1.5, (len(kps), 2))
                flat = [float(v) for xy in pts for v in (*xy, 2)]
                anns.append({"id": len(anns) + 1, "image_id": im["id"], "category_id": 1,
                             "bbox": [x0, y0, max(x1 - x0, 1.0), max(y1 - y0, 1.0)],
                             "area": 0.6 * max((x1 - x0) * (y1 - y0), 1.0), "iscrowd": 0,
                             "keypoints": flat, "num_keypoints": len(kps)})  # fmt: skip
    coco["annotations"] = anns
    ann.write_text(json.dumps(coco))
    return ann


def make_prediction(seed: int, n: int, dtype=torch.float32) -> Prediction:
    g = torch.Generator().manual_seed(seed)
    return Prediction(
        torch.rand(n, 4, generator=g).to(dtype),
        torch.rand(n, generator=g).to(dtype),
        torch.randint(0, 3, (n,), generator=g),
        torch.rand(n, 17, 3, generator=g).to(dtype),
    )


def same_prediction(a: Prediction, b: Prediction) -> bool:
    return all(
        x.dtype == y.dtype and x.shape == y.shape and torch.equal(x, y)
        for x, y in zip(
            (a.boxes, a.scores, a.labels, a.keypoints),
            (b.boxes, b.scores, b.labels, b.keypoints),
            strict=True,
        )  # fmt: skip
    )
