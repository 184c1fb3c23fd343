"""COCO box and keypoint metrics, equal to pycocotools' to 1e-9, and the analyses around them.

    from pytest_kpmodel.metrics import evaluate
    m = evaluate(gt, results, sigmas=ks.sigmas, flip_index=ks.flip_index(), names=ks.names)
    m.bbox.AP, m.keypoints["AP50"], m.per_keypoint["left_wrist"]["ap"], m.to_json()

What each metric means, what is refused and what is handled as pycocotools handles it:
:mod:`.evaluation`. Modules, one job each:

- ``evaluation``: :func:`evaluate`, from COCO dicts to :class:`KeypointMetrics` (``results``).
- ``params``: pycocotools' default parameters and stat names.
- ``engines``: pycocotools, hotcoco and faster-coco-eval behind one call.
- ``inputs``: ground truth and results checked and turned into arrays (``prepare``), with
  ``keypoint_layout``, ``ground_truth``, ``detections`` and ``messages``.
- ``layout``, ``pairs``, ``matching``, ``accumulate``: pycocotools' per-image evaluation and
  accumulation re-done with numpy, bit for bit.
- ``oks``: the OKS formula, written once (the report's gallery and robustness use it too).
- ``bootstrap``, ``analysis``, ``flip``: intervals over images, per-keypoint analyses and
  error types, flip consistency.
- ``synthetic``: seeded COCO sets for parity tests and benchmarks.
- ``accuracy``: the run's evaluation, bound to a session's predictions, card and data.

May import: numpy, the engines (lazily), and the lower layer (``errors``, ``keypoints``,
``keypoint_presets``). Never pytest, torch, ``session``, ``plugin`` or another feature
package; ``accuracy`` is handed the session and does not import it.
"""

from __future__ import annotations

from .engines import ENGINES, EngineError, available_engines, resolve_engine
from .evaluation import evaluate
from .flip import FlipConsistency, flip_consistency, flip_results, image_widths
from .params import BBOX_STATS, KEYPOINT_STATS
from .results import CocoStats, KeypointErrors, KeypointMetrics, PerKeypoint, PRCurves

__all__ = [
    "BBOX_STATS",
    "ENGINES",
    "KEYPOINT_STATS",
    "CocoStats",
    "EngineError",
    "FlipConsistency",
    "KeypointErrors",
    "KeypointMetrics",
    "PRCurves",
    "PerKeypoint",
    "available_engines",
    "evaluate",
    "flip_consistency",
    "flip_results",
    "image_widths",
    "resolve_engine",
]
