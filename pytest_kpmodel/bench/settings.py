"""``kp_bench(...)`` settings: what is timed, how often and at which size, validated with one
message naming the bad setting."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

from ..errors import KpModelError

PRECISIONS = ("fp32", "fp16", "bf16")


class BenchError(KpModelError):
    """Bad benchmark settings or a benchmark that could not be stored."""


@dataclass(frozen=True)
class BenchSettings:
    batch_size: int = 1
    precision: str = "fp32"
    image_size: tuple[int, int] | None = (800, 1333)  # (H, W); None: the images' own sizes
    warmup: int = 10  # raised to the number of distinct batches when smaller
    iters: int = 100
    num_images: int = 8  # distinct real images cycled through (at least batch_size)
    stage_iters: int | None = None  # stage-timing pass; None: min(iters, 20); 0: off
    rss_interval_s: float = 0.002

    @classmethod
    def from_kwargs(cls, **kwargs: Any) -> BenchSettings:
        """Validated settings from ``kp_bench(...)`` marker or call kwargs (later wins: merge the
        marker's kwargs with the call's before calling)."""
        known = {f for f in cls.__dataclass_fields__}
        unknown = sorted(set(kwargs) - known)
        if unknown:
            raise BenchError(
                f"kp_bench: unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
            )
        s = cls(**kwargs)
        s.validate()
        if s.image_size is not None:
            s = replace(s, image_size=(int(s.image_size[0]), int(s.image_size[1])))
        return s

    def validate(self) -> None:
        def positive_int(name: str, value: Any, minimum: int = 1) -> None:
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise BenchError(f"kp_bench: {name} must be an integer >= {minimum}, got {value!r}")

        positive_int("batch_size", self.batch_size)
        positive_int("warmup", self.warmup, 0)
        positive_int("iters", self.iters)
        positive_int("num_images", self.num_images)
        if self.stage_iters is not None:
            positive_int("stage_iters", self.stage_iters, 0)
        if self.precision not in PRECISIONS:
            raise BenchError(
                f"kp_bench: precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}"
            )
        size = self.image_size
        if size is not None and (
            not isinstance(size, tuple | list)
            or len(size) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in size)
        ):
            raise BenchError(
                f"kp_bench: image_size must be (height, width) in pixels or None, got {size!r}"
            )
        if not (isinstance(self.rss_interval_s, int | float) and self.rss_interval_s > 0):
            raise BenchError(f"kp_bench: rss_interval_s must be > 0, got {self.rss_interval_s!r}")

    @property
    def effective_stage_iters(self) -> int:
        return min(self.iters, 20) if self.stage_iters is None else self.stage_iters

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["image_size"] = list(self.image_size) if self.image_size is not None else None
        return d
