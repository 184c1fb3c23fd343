"""A fake clock, fake predictions and a fake model for the bench tests."""

from __future__ import annotations

import torch


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class FakePred:
    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n


class FakeModel:
    """predict() advances the fake clock by the next duration and logs what it saw."""

    precision = "fp32"
    num_keypoints = 17

    def __init__(self, clock=None, durations_ms=(10.0,), device="cpu", log=None, dets=3):
        self.device = torch.device(device)
        self.clock = clock
        self.durations = list(durations_ms)
        self.calls = 0
        self.log = log if log is not None else []
        self.dets = dets

    def predict(self, images):
        if self.clock is not None:
            self.clock.now += self.durations[self.calls % len(self.durations)] / 1000.0
        self.calls += 1
        shapes = tuple(tuple(im.shape) for im in images)
        self.log.append(("predict", shapes, torch.backends.cudnn.benchmark))
        return [FakePred(self.dets + i) for i in range(len(images))]


def images(*sizes):
    return [torch.zeros(3, h, w, dtype=torch.uint8) for h, w in sizes]
