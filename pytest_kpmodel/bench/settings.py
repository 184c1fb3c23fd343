"""``kp_bench(...)`` settings: what is timed, how often and at which size, validated with one
message naming the bad setting."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

from ..errors import KpModelError, did_you_mean

PRECISIONS = ("fp32", "fp16", "bf16")
STAGE_PASS_CUDA = 10  # calls of the separate stage pass on CUDA when stage_iters is None


class BenchError(KpModelError):
    """Bad benchmark settings or a benchmark that could not be stored."""


@dataclass(frozen=True)
class BenchSettings:
    batch_size: int = 1
    precision: str = "fp32"
    image_size: tuple[int, int] | None = (800, 1333)  # (H, W); None: the images' own sizes
    # Warm-up calls per distinct input shape the timed calls see (one shape with image_size set:
    # exactly `warmup` calls; 0: none).
    warmup: int = 10
    iters: int = 100
    # Distinct real images the timed calls cycle through (the first ones of the set; at least
    # batch_size, at most iters * batch_size: images no timed call would reach are not loaded).
    num_images: int = 8
    # Per-stage times. None: taken during the timed calls (no extra forward pass) where a stamp
    # needs no synchronisation (the CPU; opaque models anywhere); R-CNN models on CUDA: a
    # separate pass of min(iters, STAGE_PASS_CUDA) calls after the timed loop. 0: no stage
    # times. N: a separate pass of N calls on any device.
    stage_iters: int | None = None
    rss_interval_s: float = 0.002

    @classmethod
    def from_kwargs(cls, **kwargs: Any) -> BenchSettings:
        """Validated settings from ``kp_bench(...)`` marker or call kwargs (later wins: merge the
        marker's kwargs with the call's before calling)."""
        known = {f for f in cls.__dataclass_fields__}
        unknown = sorted(set(kwargs) - known)
        if unknown:
            hint = "".join(did_you_mean(name, known) for name in unknown[:1])
            raise BenchError(
                f"kp_bench: unknown setting(s) {', '.join(unknown)}; {hint}known: "
                + ", ".join(sorted(known))
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

    def stages_in_timed_calls(self, device_type: str, hookable: bool) -> bool:
        """Whether the stage times come from the timed calls themselves (see ``stage_iters``)."""
        return self.stage_iters is None and not (device_type == "cuda" and hookable)

    def stage_pass_iters(self, device_type: str, hookable: bool) -> int:
        """Calls of the separate stage pass after the timed loop (0: none)."""
        if self.stage_iters is not None:
            return self.stage_iters
        return min(self.iters, STAGE_PASS_CUDA) if (device_type == "cuda" and hookable) else 0

    def forward_passes(self, shapes: int, device_type: str = "cpu", hookable: bool = True) -> int:
        """Model calls one measurement makes: warm-up per shape, timed calls, stage pass."""
        return self.warmup * shapes + self.iters + self.stage_pass_iters(device_type, hookable)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["image_size"] = list(self.image_size) if self.image_size is not None else None
        return d
