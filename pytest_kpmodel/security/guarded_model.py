"""A loaded model whose every ``predict`` runs under the run's ``RuntimeGuard``."""

from __future__ import annotations

from typing import Any

from .guard import RuntimeGuard


class GuardedModel:
    def __init__(self, inner: Any, guard: RuntimeGuard) -> None:
        self.inner = inner
        self.guard = guard

    def predict(self, images):
        return self.guard.call(self.inner.predict, images)

    def __getattr__(self, name: str) -> Any:
        # device, num_keypoints, module, precision...: the wrapped model's
        return getattr(self.inner, name)
