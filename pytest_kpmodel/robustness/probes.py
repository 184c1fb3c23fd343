"""The run's robustness probes: stability under a perturbation, flip consistency, the
corruption sweep and the trigger scan, bound to the session's model, data and settings.

All four work on a fixed sample of the evaluation set (seeded by ``--kp-seed``), so a probe's
cost is bounded and its result reproducible. ``kp_corruptions(...)`` on a test or module sets
the sweep; the defaults are the 15 standard corruptions at severities 1-5 on 50 images.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import KpModelError
from ..marker_args import MarkerUse, check_marker_args, one_per_run, parse_markers

CORRUPTION_ARGS = ("corruptions", "severities", "max_images", "batch_size")


@dataclass(frozen=True)
class CorruptionConfig:
    corruptions: tuple[str, ...] | None = None  # None: the 15 standard ones
    severities: tuple[int, ...] = (1, 2, 3, 4, 5)
    max_images: int = 50
    batch_size: int = 4

    @classmethod
    def from_marker(cls, args: tuple, kwargs: dict[str, Any]) -> CorruptionConfig:
        from .corruptions import CORRUPTIONS, SEVERITIES

        check_marker_args("kp_corruptions", args, kwargs, CORRUPTION_ARGS)
        names = kwargs.get("corruptions")
        if names is not None:
            names = tuple(names)
            bad = [n for n in names if n not in CORRUPTIONS]
            if bad:
                raise KpModelError(
                    f"kp_corruptions: unknown corruption(s) {', '.join(bad)}; "
                    f"one of {', '.join(CORRUPTIONS)}"
                )
        severities = tuple(kwargs.get("severities", cls.severities))
        if not severities or any(s not in SEVERITIES for s in severities):
            raise KpModelError(f"kp_corruptions(severities={severities!r}): integers 1-5")
        for key in ("max_images", "batch_size"):
            value = kwargs.get(key, getattr(cls, key))
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise KpModelError(f"kp_corruptions({key}={value!r}): a positive integer")
        return cls(
            corruptions=names,
            severities=severities,
            max_images=kwargs.get("max_images", cls.max_images),
            batch_size=kwargs.get("batch_size", cls.batch_size),
        )

    @classmethod
    def for_run(cls, uses: Iterable[MarkerUse]) -> CorruptionConfig | None:
        """The one sweep the spec's ``kp_corruptions`` markers ask for (None: no test asks;
        tests asking for different sweeps are an error naming them)."""
        return one_per_run("kp_corruptions: the sweep", parse_markers(uses, cls.from_marker))


def predict_images(model, images, batch_size: int = 4) -> list:
    """The model's predictions (on the CPU) for a list of float CHW images, in batches."""
    out = []
    for s in range(0, len(images), batch_size):
        out += [p.cpu() for p in model.predict(images[s : s + batch_size])]
    return out


class Sample:
    """A fixed, seeded sample of the evaluation set with the model's clean predictions."""

    def __init__(self, session, n: int) -> None:
        from ..data import load_images
        from .stability import fixed_sample

        ds = session.dataset
        self.indices = fixed_sample(len(ds), min(n, len(ds)), seed=session.settings.seed)
        self.image_ids = [ds.image_ids[i] for i in self.indices]
        self.images = [im.float().div_(255) for im in load_images(ds, self.indices)]
        self.clean = predict_images(session.model, self.images)


class StabilityProbe:
    """``kp_stability(p)``: the model's predictions under perturbation ``p``, mapped back and
    compared with its clean predictions by OKS (``robustness.stability.StabilityResult``)."""

    def __init__(self, session, n_images: int = 8) -> None:
        self.session = session
        self.n_images = n_images
        self._sample: Sample | None = None
        self.last: tuple[Any, dict[str, Any]] | None = None  # (perturbation, call options)

    @property
    def sample(self) -> Sample:
        if self._sample is None:
            self._sample = Sample(self.session, self.n_images)
        return self._sample

    def __call__(self, perturbation, *, score_threshold: float = 0.5, oks_threshold: float = 0.5,
                 save: str | Path | None = None):  # fmt: skip
        from .stability import measure

        s = self.sample
        options = {"score_threshold": score_threshold, "oks_threshold": oks_threshold}
        self.last = (perturbation, options)
        return measure(
            self.session.model,
            s.images,
            s.clean,
            perturbation,
            self.session.card.keypoints,
            indices=s.indices,
            save=save,
            **options,
        )

    def failure_note(self, folder: Path, nodeid: str) -> str:
        """What a failed stability test shows: the line that reproduces the last (shrunk)
        perturbation and the images :meth:`save_last` saved under ``folder/stability``."""
        try:
            entry = self.save_last(folder / "stability", nodeid)
        except KpModelError as exc:
            entry = {"saved": [], "error": str(exc)}
        lines = [f"reproduce with: kp_stability({self.last[0]!r})"] if self.last else []
        lines += [f"saved: {path}" for path in (entry or {}).get("saved", [])]
        return "\n".join(lines)

    def save_last(self, folder: Path, nodeid: str) -> dict[str, Any] | None:
        """Re-run the last (for a failed hypothesis test: the shrunk) perturbation, saving the
        clean vs perturbed images; recorded in the report's robustness section."""
        if self.last is None:
            return None
        perturbation, options = self.last
        target = folder / re.sub(r"[^A-Za-z0-9_.-]+", "_", nodeid)[-120:]
        result = self(perturbation, save=target, **options)
        entry = {"nodeid": nodeid, **result.to_dict()}
        section = self.session.sections.setdefault("robustness", {})
        section.setdefault("stability", []).append(entry)
        return entry


def flip_consistency(session, n_images: int = 32):
    """``kp_flip_consistency``: mean OKS between the model's predictions on a fixed sample of
    images and on their mirror images mapped back with the card's flip pairs
    (``metrics.flip_consistency``); recorded in the report's ``metrics`` section."""
    from ..metrics import flip_consistency as measure
    from ..predictions import PredictionSet

    sample = Sample(session, n_images)
    ks, cat = session.card.keypoints, session.dataset.category_id
    flipped = predict_images(session.model, [im.flip(-1) for im in sample.images])
    result = measure(
        PredictionSet(sample.image_ids, sample.clean).to_result_arrays(cat),
        PredictionSet(sample.image_ids, flipped).to_result_arrays(cat),
        widths={i: im.shape[-1] for i, im in zip(sample.image_ids, sample.images, strict=True)},
        flip_index=ks.flip_index(),
        sigmas=ks.sigmas,
        names=ks.names,
    )
    if session.parent is None:
        session.sections.setdefault("metrics", {})["flip_consistency"] = result.to_json()
    return result


def corruption_eval(session, config: CorruptionConfig):
    """The corruption sweep on a fixed sample; mPC/rPC on keypoint AP."""
    from ..metrics.accuracy import evaluate_predictions
    from ..predictions import PredictionSet
    from .corruption_eval import run
    from .corruptions import CORRUPTIONS

    sample = Sample(session, config.max_images)

    def evaluate(preds) -> dict[str, Any]:
        m = evaluate_predictions(
            session, PredictionSet(sample.image_ids, list(preds)), image_ids=sample.image_ids,
            analyses=False,
        )  # fmt: skip
        return {"bbox": m.bbox.to_json(), "keypoints": m.keypoints.to_json()}

    model, images, evaluate_fn = session.model, sample.images, evaluate
    group = session.dist
    if group.enabled:  # torchrun: each rank predicts its shard, rank 0 evaluates, broadcasts
        from ..distributed.sweep import ShardedSweep

        sweep = ShardedSweep(group, model, images, evaluate, config.batch_size,
                             session.card.keypoints.num_keypoints)  # fmt: skip
        model, images, evaluate_fn = sweep.model, sweep.images, sweep.evaluate
    result = run(
        model,
        images,
        evaluate_fn,
        severities=config.severities,
        corruptions=config.corruptions or CORRUPTIONS,
        batch_size=config.batch_size,
        seed=session.settings.seed,
        clean_metrics=group.on_main("corruption clean", lambda: evaluate(sample.clean)),
        primary="keypoints.AP",
    )
    session.sections.setdefault("robustness", {})["corruption"] = result.to_dict()
    return result


def trigger_scan(session, n_images: int = 8, **options):
    """``kp_trigger_scan``: a hypothesis search for a patch that makes people vanish or appear."""
    from .trigger import scan

    sample = Sample(session, n_images)
    result = scan(session.model, sample.images, sample.clean, **options)
    session.sections.setdefault("robustness", {})["trigger"] = result.to_dict()
    return result
