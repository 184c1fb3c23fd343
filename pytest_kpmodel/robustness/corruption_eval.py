"""Metrics under the corruption suite: per corruption and severity, mPC and rPC.

``run`` corrupts the evaluation images batch by batch on the model's device (the same corrupted
image whatever the batch size: random streams are keyed by the image's index), predicts, and
hands each corruption/severity's predictions to ``evaluate_fn`` (the metrics module's callback,
``predictions -> dict``). Following Michaelis et al. 2019 ("Benchmarking Robustness in Object
Detection"):

- ``mPC`` = mean of a metric over all corruptions and severities,
- ``rPC`` = mPC / the clean value.

Both are computed for every numeric leaf of the metrics dicts (nested dicts keep their shape);
``primary`` names the leaf (dotted path, e.g. ``"keypoints.AP"``) that the scalar
``result.mpc``/``result.rpc`` refer to. Torch is imported lazily.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pytest_kpmodel.progress import step
from pytest_kpmodel.robustness.kinds import CORRUPTIONS

if TYPE_CHECKING:
    import torch

    from pytest_kpmodel.adapters.base import KeypointModel, Prediction

Metrics = dict[str, Any]
PRIMARY_CANDIDATES = ("kp_ap", "keypoints.AP", "keypoints.ap", "box_ap", "bbox.AP", "bbox.ap",
                      "AP", "ap")  # fmt: skip


@dataclass
class CorruptionEvalResult:
    """Everything ``run`` measured; ``to_dict()`` is the report's ``robustness`` entry."""

    clean: Metrics
    results: dict[str, dict[int, Metrics]]
    mPC: Metrics
    rPC: Metrics
    per_corruption: dict[str, Metrics]
    severities: tuple[int, ...]
    corruptions: tuple[str, ...]
    seed: int
    num_images: int
    primary: str | None
    timing_s: dict[str, float] = field(default_factory=dict)

    @property
    def mpc(self) -> float | None:
        """mPC of the primary metric."""
        return _get(self.mPC, self.primary)

    @property
    def rpc(self) -> float | None:
        """rPC of the primary metric (``kp_thresholds(rpc=...)`` compares against this)."""
        return _get(self.rPC, self.primary)

    @property
    def clean_value(self) -> float | None:
        return _get(self.clean, self.primary)

    def to_dict(self) -> dict[str, Any]:
        return {
            "suite": "imagenet-c/coco-c corruptions (pytest_kpmodel.robustness, torch)",
            "corruptions": list(self.corruptions),
            "severities": list(self.severities),
            "seed": self.seed,
            "num_images": self.num_images,
            "primary": self.primary,
            "clean": self.clean,
            "results": {
                name: {str(s): m for s, m in by_sev.items()}
                for name, by_sev in self.results.items()
            },
            "per_corruption": self.per_corruption,
            "mPC": self.mPC,
            "rPC": self.rPC,
            "mpc": self.mpc,
            "rpc": self.rpc,
            "timing_s": self.timing_s,
        }

    def __str__(self) -> str:
        def fmt(v: float | None) -> str:
            return "n/a" if v is None else f"{v:.4f}"

        lines = [
            f"corruption suite on {self.num_images} images (seed {self.seed}), "
            f"{self.primary or 'no primary metric'}: clean {fmt(self.clean_value)}, "
            f"mPC {fmt(self.mpc)}, rPC {fmt(self.rpc)}"
        ]
        for name in self.corruptions:
            values = " ".join(
                fmt(_get(self.results[name][s], self.primary)) for s in self.severities
            )
            lines.append(f"  {name:18s} {values}")
        return "\n".join(lines)


def _leaves(d: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    out: dict[str, float] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(_leaves(v, key + "."))
        elif isinstance(v, bool):
            continue
        elif isinstance(v, int | float):
            out[key] = float(v)
    return out


def _get(d: Mapping[str, Any], path: str | None) -> float | None:
    if path is None:
        return None
    leaves = _leaves(d)
    v = leaves.get(path)
    return None if v is None else float(v)


def _shape_like(template: Mapping[str, Any], values: Mapping[str, float | None], prefix=""):
    out: dict[str, Any] = {}
    for k, v in template.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            sub = _shape_like(v, values, key + ".")
            if sub:
                out[k] = sub
        elif key in values:
            out[k] = values[key]
    return out


def _mean_metrics(items: Sequence[Mapping[str, Any]]) -> Metrics:
    """Leaf-wise mean over metrics dicts (leaves present in all of them)."""
    if not items:
        return {}
    leaves = [_leaves(m) for m in items]
    common = set(leaves[0]).intersection(*leaves[1:])
    means = {k: sum(lv[k] for lv in leaves) / len(leaves) for k in common}
    return _shape_like(items[0], means)


def _ratio_metrics(num: Mapping[str, Any], den: Mapping[str, Any]) -> Metrics:
    a, b = _leaves(num), _leaves(den)
    ratios = {k: (a[k] / b[k] if b.get(k) else None) for k in a if k in b}
    return _shape_like(num, ratios)


def _json_safe(m: Mapping[str, Any]) -> Metrics:
    out: dict[str, Any] = {}
    for k, v in m.items():
        if isinstance(v, Mapping):
            out[str(k)] = _json_safe(v)
        elif isinstance(v, bool | str) or v is None:
            out[str(k)] = v
        elif isinstance(v, int | float):
            out[str(k)] = float(v) if isinstance(v, float) else v
        else:
            try:
                out[str(k)] = float(v)
            except (TypeError, ValueError):
                out[str(k)] = str(v)
    return out


def _image_of(item: Any) -> torch.Tensor:
    """A data set item: the image itself, ``(image, target)``, or a dict with ``"image"``."""
    if isinstance(item, Mapping):
        return item["image"]
    if isinstance(item, tuple | list):
        return item[0]
    return item


def _predict(
    model: KeypointModel,
    images: Sequence[torch.Tensor],
    batch_size: int,
    transform: Callable[[list[torch.Tensor], list[int]], list[torch.Tensor]] | None,
    timing: dict[str, float],
    done: Callable[[int], Any] = lambda _n: None,
) -> list[Prediction]:
    import torch

    device = getattr(model, "device", None)
    preds: list[Prediction] = []
    sync = torch.cuda.synchronize if (device is not None and torch.device(device).type == "cuda") \
        else (lambda: None)  # fmt: skip
    for start in range(0, len(images), batch_size):
        idx = list(range(start, min(len(images), start + batch_size)))
        batch = [_image_of(images[i]) for i in idx]
        if device is not None:
            batch = [b.to(device) for b in batch]
        if transform is not None:
            t0 = time.perf_counter()
            batch = transform(batch, idx)
            sync()
            timing["corrupt"] = timing.get("corrupt", 0.0) + time.perf_counter() - t0
        t0 = time.perf_counter()
        out = model.predict(batch)
        preds.extend(p.cpu() for p in out)
        timing["inference"] = timing.get("inference", 0.0) + time.perf_counter() - t0
        done(len(idx))
    return preds


def run(
    model: KeypointModel,
    dataset_images: Sequence[torch.Tensor],
    evaluate_fn: Callable[[list[Prediction]], Mapping[str, Any]],
    severities: Sequence[int] = (1, 2, 3, 4, 5),
    corruptions: Sequence[str] = CORRUPTIONS,
    batch_size: int = 8,
    seed: int = 0,
    *,
    clean_metrics: Mapping[str, Any] | None = None,
    primary: str | None = None,
    progress: Callable[[str, int, Metrics], None] | None = None,
) -> CorruptionEvalResult:
    """Evaluate ``model`` on every corruption x severity of ``dataset_images``.

    ``dataset_images``: CHW float images in [0, 1] (any device), in the order ``evaluate_fn``
    expects predictions; anything with ``len`` and indexing is read lazily, one batch at a time,
    and items may also be ``(image, target)`` pairs or dicts with an ``"image"``. ``clean_metrics``: pass the clean evaluation if it
    is already known (else the clean images are evaluated too). ``primary``: dotted path of the
    headline metric (default: the first of ``PRIMARY_CANDIDATES`` present). ``progress`` is called
    as ``progress(corruption, severity, metrics)`` after each evaluation.
    """
    from pytest_kpmodel.robustness.corruptions import SEVERITIES, corruption

    corruptions = tuple(corruptions)
    severities = tuple(int(s) for s in severities)
    for s in severities:
        if s not in SEVERITIES:
            raise ValueError(f"severities must be integers 1-5, got {s!r}")
    for name in corruptions:
        if name not in CORRUPTIONS:
            raise ValueError(f"unknown corruption {name!r}; one of {', '.join(CORRUPTIONS)}")
    batch_size = max(1, int(batch_size))
    images = (
        dataset_images
        if hasattr(dataset_images, "__getitem__") and hasattr(dataset_images, "__len__")
        else list(dataset_images)
    )
    timing: dict[str, float] = {}
    t_eval = 0.0
    runs = len(corruptions) * len(severities) + (clean_metrics is None)
    name_of = getattr(model, "name", "") or type(model).__name__
    what = (f"corruption sweep: {len(corruptions)} corruptions x {len(severities)} severities on "
            f"{len(images)} images with {name_of} on {getattr(model, 'device', 'cpu')}")  # fmt: skip
    with step(what, runs * len(images)) as bar:
        if clean_metrics is None:
            preds = _predict(model, images, batch_size, None, timing, bar)
            t0 = time.perf_counter()
            clean_metrics = evaluate_fn(preds)
            t_eval += time.perf_counter() - t0
        clean = _json_safe(clean_metrics)
        results: dict[str, dict[int, Metrics]] = {}
        for name in corruptions:
            results[name] = {}
            for s in severities:
                pert = corruption(name, s, seed)

                def transform(batch, idx, pert=pert):
                    return pert.apply(batch, indices=idx).images

                preds = _predict(model, images, batch_size, transform, timing, bar)
                t0 = time.perf_counter()
                metrics = _json_safe(evaluate_fn(preds))
                t_eval += time.perf_counter() - t0
                results[name][s] = metrics
                if progress is not None:
                    progress(name, s, metrics)
    from pytest_kpmodel.robustness.ops.apply import release_buffers  # torch: imported when used
    from pytest_kpmodel.robustness.ops.context import SEED_MEMO

    SEED_MEMO.clear()  # the sweep's textures: shared by its severities, not kept after it
    release_buffers()  # nor its batches and work buffers (up to 160 MB on this thread)
    timing["evaluate"] = t_eval
    all_metrics = [m for by_sev in results.values() for m in by_sev.values()]
    mpc = _mean_metrics(all_metrics)
    per_corruption = {
        name: _mean_metrics(list(by_sev.values())) for name, by_sev in results.items()
    }
    if primary is None:
        leaves = _leaves(clean)
        primary = next((c for c in PRIMARY_CANDIDATES if c in leaves), None)
    return CorruptionEvalResult(
        clean=clean,
        results=results,
        mPC=mpc,
        rPC=_ratio_metrics(mpc, clean),
        per_corruption=per_corruption,
        severities=severities,
        corruptions=corruptions,
        seed=seed,
        num_images=len(images),
        primary=primary,
        timing_s={k: round(v, 4) for k, v in timing.items()},
    )
