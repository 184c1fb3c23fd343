"""The first run ``kpmodel init`` measures: accuracy, speed and flip consistency of the model
under the spec's own settings, through ``KpSession`` (what a spec run computes, nothing else)."""

from __future__ import annotations

import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import KpModelError, first_line
from ..settings import Settings

# How the scaffolded speed tests time the model: the images' own size, bounded work so that a
# CPU runner finishes in seconds (the example suite's settings).
BENCH: dict[str, Any] = {"image_size": None, "warmup": 3, "iters": 20, "num_images": 8}
ACCURACY_STATS = {"box_ap": ("bbox", "AP"), "box_ap50": ("bbox", "AP50"),
                  "kp_ap": ("keypoints", "AP"), "kp_ap50": ("keypoints", "AP50")}  # fmt: skip


@dataclass
class FirstRun:
    """What the model did on this machine; ``unmeasured``: piece -> why it is not here."""

    model: str  # "name version"
    sha256: str | None
    device: str
    images: int
    dataset: str
    engine_note: str
    accuracy: dict[str, float] = field(default_factory=dict)
    baseline: dict[str, float] = field(default_factory=dict)
    baseline_model: str | None = None
    speed: dict[str, float] = field(default_factory=dict)
    speed_setting: str = ""
    flip_oks: float | None = None
    flip_failed: bool = False  # the model raised on mirrored images: no flip test is written
    python: str = field(default_factory=lambda: "{}.{}".format(*sys.version_info[:2]))
    os: str = field(default_factory=lambda: sys.platform)
    machine: str = field(default_factory=platform.machine)
    unmeasured: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    def where(self) -> str:
        """The provenance of every measured number, for the files' comments."""
        digest = f" sha256:{self.sha256[:12]}" if self.sha256 else ""
        return f"{self.model}{digest}, {self.images} images of {self.dataset}, {self.device}"


def _accuracy(metrics) -> dict[str, float]:
    out = {}
    for name, (section, stat) in ACCURACY_STATS.items():
        stats = getattr(metrics, section)
        if stats is not None:
            out[name] = float(stats[stat])
    return out


def measure(
    card_path: Path,
    *,
    dataset: Path | None = None,
    device: str | None = None,
    max_images: int | None = None,
    allow_code: bool = False,
    cache_dir: Path | None = None,
    speed: bool = True,
) -> FirstRun:
    """Measure ``card_path``'s model once. Accuracy must succeed (a spec without it is not an
    acceptance spec); speed, the baseline and flip consistency are left out with the reason
    when they cannot run here."""
    from ..session import KpSession

    start = time.perf_counter()
    settings = Settings(model=card_path, dataset=dataset, device=device, max_images=max_images,
                        allow_code=allow_code, cache_dir=cache_dir)  # fmt: skip
    with KpSession(settings) as kp:
        card = kp.card
        metrics = kp.eval
        ds = kp.dataset
        run = FirstRun(
            model=f"{card.model.name} {card.model.version}".strip(),
            sha256=kp.weights_digest,
            device=kp.device,
            images=len(ds),
            dataset=_short(kp.dataset_source()[0]),
            engine_note=f"{metrics.engine} {metrics.engine_version}",
            accuracy=_accuracy(metrics),
        )
        if card.provenance.base is not None or kp.settings.baseline is not None:
            try:
                base = kp.baseline
                run.baseline = _accuracy(base.eval)
                run.baseline_model = f"{base.card.model.name} {base.card.model.version}".strip()
            except KpModelError as exc:
                run.unmeasured["baseline"] = str(exc)
        if speed:
            try:
                bench = kp.bench(**BENCH)
                run.speed = {"fps": bench.fps, "latency_p50_ms": bench.latency.p50,
                             "latency_p90_ms": bench.latency.p90}  # fmt: skip
                if bench.peak_vram_mib is not None:
                    run.speed["vram_mib"] = float(bench.peak_vram_mib)
                else:
                    run.unmeasured["vram_mib"] = f"no VRAM on {bench.device}"
                s = bench.settings
                run.speed_setting = f"batch {s.batch_size}, {s.precision}, {bench.device}"
            except KpModelError as exc:
                run.unmeasured["speed"] = str(exc)
        else:
            run.unmeasured["speed"] = "not measured (--no-speed)"
        try:
            flip = kp.flip_consistency
            if flip.mean_oks is None:
                run.unmeasured["flip"] = "no detection scored >= 0.5 on the sample: nothing to pair"
            else:
                run.flip_oks = float(flip.mean_oks)
        except KpModelError as exc:
            run.unmeasured["flip"] = str(exc)
        except Exception as exc:  # noqa: BLE001 - the vendor's code failed on mirrored images
            run.unmeasured["flip"] = (
                f"the model failed on mirrored images ({type(exc).__name__}: {first_line(exc)})"
            )
            run.flip_failed = True
    run.seconds = time.perf_counter() - start
    return run


def _short(path: Path | str | None) -> str:
    if path is None:
        return "the card's [dataset]"
    p = Path(path)
    return str(Path(p.parent.name) / p.name) if p.parent.name else p.name
