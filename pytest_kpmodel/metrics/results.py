"""What :func:`~.evaluation.evaluate` returns: the COCO stats by name, per-keypoint results,
PR curves, keypoint error shares, and :class:`KeypointMetrics`, whose ``to_json()`` is
kp-report.json's ``metrics`` (layout in :mod:`.evaluation`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import analysis
from .bootstrap import Interval
from .params import stat_names


class CocoStats(Mapping[str, float]):
    """The standard COCO stats by name: ``s["AP"]``, ``s.AP``, ``dict(s)``."""

    def __init__(self, iou_type: str, values: Sequence[float]) -> None:
        names = stat_names(iou_type)
        if len(values) != len(names):
            raise ValueError(f"{iou_type} needs {len(names)} stats, got {len(values)}")
        self.iou_type = iou_type
        self._values = {n: float(v) for n, v in zip(names, values, strict=True)}

    def __getitem__(self, name: str) -> float:
        return self._values[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __getattr__(self, name: str) -> float:
        try:
            return self.__dict__["_values"][name]
        except KeyError:
            raise AttributeError(name) from None

    def as_array(self) -> np.ndarray:
        """In pycocotools' ``COCOeval.stats`` order."""
        return np.asarray(list(self._values.values()))

    def to_json(self) -> dict[str, float]:
        return dict(self._values)

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v:.4f}" for k, v in self._values.items())
        return f"CocoStats({self.iou_type}: {inner})"


@dataclass(frozen=True)
class PerKeypoint(Mapping[str, dict[str, Any]]):
    """Per-keypoint results by keypoint name: ``pk["nose"]["ap"]``."""

    names: tuple[str, ...]
    sigmas: tuple[float, ...]
    ap: tuple[float, ...]
    ap50: tuple[float, ...]
    ap75: tuple[float, ...]
    oks: tuple[float | None, ...]
    pck: Mapping[float, tuple[float | None, ...]]
    count: tuple[int, ...]

    def __getitem__(self, name: str) -> dict[str, Any]:
        k = self.names.index(name) if name in self.names else None
        if k is None:
            raise KeyError(name)
        row: dict[str, Any] = {
            "sigma": self.sigmas[k],
            "ap": self.ap[k],
            "ap50": self.ap50[k],
            "ap75": self.ap75[k],
            "oks": self.oks[k],
        }
        for a, vals in self.pck.items():
            row[f"pck@{a:g}"] = vals[k]
        row["n"] = self.count[k]
        return row

    def __iter__(self) -> Iterator[str]:
        return iter(self.names)

    def __len__(self) -> int:
        return len(self.names)

    def to_json(self) -> dict[str, dict[str, Any]]:
        return {n: self[n] for n in self.names}


@dataclass(frozen=True)
class PRCurves:
    """Precision at each recall threshold (area all, largest maxDets), averaged over categories."""

    recall: tuple[float, ...]
    curves: Mapping[str, Mapping[str, tuple[float, ...]]]  # iou type -> iou50 | iou75 | mean

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"recall": list(self.recall)}
        for t, c in self.curves.items():
            out[t] = {k: list(v) for k, v in c.items()}
        return out


@dataclass(frozen=True)
class KeypointErrors:
    """coco-analyze keypoint error shares per keypoint, over matched detections."""

    names: tuple[str, ...]
    count: tuple[int, ...]
    counts: Mapping[str, tuple[int, ...]]  # error type -> per keypoint
    detections: int
    detections_with: Mapping[str, int]

    def share(self, error: str, name: str | None = None) -> float | None:
        """Share of analysed keypoints (of ``name``, or all) with ``error``."""
        c = self.counts[error]
        if name is None:
            total = sum(self.count)
            return sum(c) / total if total else None
        k = self.names.index(name)
        return c[k] / self.count[k] if self.count[k] else None

    def to_json(self) -> dict[str, Any]:
        types = list(self.counts)
        return {
            "settings": {
                "match_oks": analysis.ERROR_MATCH_OKS,
                "area_range": list(analysis.ERROR_AREA_RANGE),
                "max_dets": analysis.KP_MAX_DET,
                "good_ks": analysis.GOOD_KS,
                "jitter_ks": analysis.JITTER_KS,
            },
            "per_keypoint": {
                n: {**{t: self.share(t, n) for t in types}, "n": self.count[k]}
                for k, n in enumerate(self.names)
            },
            "overall": {**{t: self.share(t) for t in types}, "n": sum(self.count)},
            "detections": {
                "analysed": self.detections,
                **{
                    f"with_{t}": (
                        self.detections_with[t] / self.detections if self.detections else None
                    )
                    for t in types
                    if t != "good"
                },
            },
        }


#: What :class:`KeypointMetrics` may compute on first access instead of up front.
ANALYSES = ("per_keypoint", "pck", "bootstrap", "keypoint_errors")


class KeypointMetrics:
    """Everything :func:`evaluate` computed; ``to_json()`` is kp-report.json's ``metrics``.

    The COCO stats are computed up front; the analyses (``per_keypoint``, ``pck``,
    ``bootstrap``, ``keypoint_errors``) when first read, once (``compute(name)``, given by
    :func:`evaluate`), so a gate on AP pays for the engine only. Given as values, they are
    never recomputed.
    """

    def __init__(
        self,
        engine: str,
        engine_version: str,
        bbox: CocoStats | None,
        keypoints: CocoStats | None,
        pr_curves: PRCurves,
        dataset: Mapping[str, Any] | None = None,
        bootstrap_settings: Mapping[str, Any] | None = None,
        *,
        compute: Callable[[str], Any] | None = None,
        **analyses: Any,
    ) -> None:
        unknown = set(analyses) - set(ANALYSES)
        if unknown:
            raise TypeError(f"unknown KeypointMetrics fields: {sorted(unknown)}")
        self.engine = engine
        self.engine_version = engine_version
        self.bbox = bbox
        self.keypoints = keypoints
        self.pr_curves = pr_curves
        self.dataset: dict[str, Any] = dict(dataset or {})
        self.bootstrap_settings: dict[str, Any] = dict(bootstrap_settings or {})
        self._compute = compute
        self.__dict__.update(analyses)

    def __getattr__(self, name: str) -> Any:
        # Only reached for attributes not set yet: the analyses, computed on first read.
        if name not in ANALYSES:
            raise AttributeError(name)
        compute = self.__dict__.get("_compute")
        value = compute(name) if compute is not None else None
        self.__dict__[name] = value
        return value

    def computed(self, name: str) -> bool:
        """Whether analysis ``name`` (one of ``ANALYSES``) has been computed (or given)."""
        return name in self.__dict__

    bootstrap: Mapping[str, Mapping[str, Interval]] | None
    per_keypoint: PerKeypoint | None
    pck: Mapping[str, Any] | None
    keypoint_errors: KeypointErrors | None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "engine": {"name": self.engine, "version": self.engine_version},
            "dataset": dict(self.dataset),
            "bbox": self.bbox.to_json() if self.bbox is not None else None,
            "keypoints": self.keypoints.to_json() if self.keypoints is not None else None,
            "per_keypoint": self.per_keypoint.to_json() if self.per_keypoint is not None else None,
            "pck": dict(self.pck) if self.pck is not None else None,
            "pr_curves": self.pr_curves.to_json(),
            "bootstrap": None,
            "keypoint_errors": self.keypoint_errors.to_json() if self.keypoint_errors else None,
        }
        if self.bootstrap is not None:
            out["bootstrap"] = {
                **self.bootstrap_settings,
                **{t: {s: iv.to_json() for s, iv in v.items()} for t, v in self.bootstrap.items()},
            }
        return out

    def __repr__(self) -> str:
        return f"KeypointMetrics(engine={self.engine!r}, bbox={self.bbox!r}, keypoints={self.keypoints!r})"
