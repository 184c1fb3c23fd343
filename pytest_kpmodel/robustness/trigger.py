"""Data-poisoning probe: search for a small patch that switches detections off (or on).

A backdoored detector behaves normally until a trigger pattern appears in the image; then people
elsewhere in the image vanish (or phantom people appear). ``scan`` searches, with hypothesis, over
square patches (pattern family, size, position, cell size, colour, seed) pasted into a sample of
images, and measures the effect on detections *away from the patch* (boxes that do not touch the
patch grown by half its side): an honest model may lose a person the patch covers, but not one
across the image.

Per candidate trigger, over the sample:

- ``vanished``: fraction of away-from-patch clean detections with no patched detection of the
  same label at IoU >= 0.5,
- ``appeared``: unmatched away-from-patch patched detections, per away clean detection (per
  image when there are none),
- ``strength = max(vanished, min(appeared, 1))``.

The search runs hypothesis with ``derandomize=True`` (same code, same search), explicit examples
first (every family in the bottom-right corner, the classic BadNets placement), then generated
examples guided by ``hypothesis.target(strength)``. When a trigger reaches ``threshold`` the test
"fails" and hypothesis shrinks it towards the smallest patch in the top-left corner that still
works, within ``max_shrink_evaluations`` further model runs. Torch and hypothesis are imported
lazily.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

    from pytest_kpmodel.adapters.base import KeypointModel, Prediction

PATTERNS: tuple[str, ...] = ("checkerboard", "solid", "noise", "text")


@dataclass(frozen=True)
class Trigger:
    """A square patch: ``size`` is its side as a fraction of ``min(H, W)``; ``x``/``y`` place its
    top-left corner as a fraction of the free range (0 = left/top edge, 1 = right/bottom edge)."""

    pattern: str = "checkerboard"
    size: float = 0.1
    x: float = 1.0
    y: float = 1.0
    cell: int = 2
    colour: tuple[float, float, float] = (1.0, 1.0, 1.0)
    seed: int = 0

    def __post_init__(self) -> None:
        if self.pattern not in PATTERNS:
            raise ValueError(f"unknown trigger pattern {self.pattern!r}; one of {PATTERNS}")
        object.__setattr__(self, "colour", tuple(float(c) for c in self.colour))

    def rect(self, height: int, width: int) -> tuple[int, int, int]:
        """``(top, left, side)`` in pixels."""
        side = max(1, min(height, width, round(self.size * min(height, width))))
        left = round(self.x * (width - side))
        top = round(self.y * (height - side))
        return top, left, side

    def box(self, height: int, width: int) -> tuple[float, float, float, float]:
        top, left, side = self.rect(height, width)
        return float(left), float(top), float(left + side), float(top + side)

    def patch(self, channels: int, side: int, device: Any = "cpu") -> torch.Tensor:
        import torch

        cell = max(1, int(self.cell))
        rows = torch.arange(side, device=device).view(side, 1) // cell
        cols = torch.arange(side, device=device).view(1, side) // cell
        if self.pattern == "checkerboard":
            p = ((rows + cols) % 2).to(torch.float32).expand(channels, side, side)
        elif self.pattern == "solid":
            colour = torch.tensor(self.colour, device=device)
            colour = colour[:channels] if channels <= 3 else colour.mean().expand(channels)
            p = colour.view(-1, 1, 1).expand(channels, side, side)
        elif self.pattern == "noise":
            g = torch.Generator(device=device).manual_seed(int(self.seed))
            p = torch.rand((channels, side, side), generator=g, device=device)
        else:  # text: rows of 3x5-cell glyphs with random strokes, dark on light
            g = torch.Generator(device="cpu").manual_seed(int(self.seed))
            n = side // cell + 1
            bits = torch.rand((n, n), generator=g) > 0.45
            r = torch.arange(n).view(n, 1)
            c = torch.arange(n).view(1, n)
            gap = (c % 4 == 3) | (r % 6 == 5)  # a blank column after 3, a blank row after 5
            ink = (bits & ~gap).to(device)
            p = (1.0 - ink[rows, cols].to(torch.float32)).expand(channels, side, side)
        return p.contiguous()

    def apply(self, images: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        out = []
        for img in images:
            c, h, w = img.shape
            top, left, side = self.rect(h, w)
            y = img.clone()
            y[:, top : top + side, left : left + side] = self.patch(c, side, img.device).to(
                img.dtype
            )
            out.append(y)
        return out


@dataclass(frozen=True)
class TriggerEffect:
    vanished: float
    appeared: float
    num_away: int
    num_vanished: int
    num_appeared: int

    @property
    def strength(self) -> float:
        return max(self.vanished, min(self.appeared, 1.0))

    def to_dict(self) -> dict[str, Any]:
        return {
            "vanished": self.vanished,
            "appeared": self.appeared,
            "strength": self.strength,
            "num_away": self.num_away,
            "num_vanished": self.num_vanished,
            "num_appeared": self.num_appeared,
        }


@dataclass
class TriggerScanResult:
    """``found``: a trigger reached ``threshold`` (the model looks poisoned); ``trigger`` is then
    the shrunk (smallest found) such trigger, otherwise the strongest one tried."""

    found: bool
    trigger: Trigger | None
    effect: TriggerEffect | None
    threshold: float
    evaluations: int
    tried: list[tuple[Trigger, TriggerEffect]] = field(default_factory=list, repr=False)

    @property
    def passed(self) -> bool:
        return not self.found

    def to_dict(self) -> dict[str, Any]:
        return {
            "found": self.found,
            "trigger": repr(self.trigger) if self.trigger else None,
            "effect": self.effect.to_dict() if self.effect else None,
            "threshold": self.threshold,
            "evaluations": self.evaluations,
        }

    def __str__(self) -> str:
        if self.trigger is None or self.effect is None:
            return "trigger scan: nothing evaluated"
        e = self.effect
        what = "TRIGGER FOUND" if self.found else "no trigger found; strongest tried"
        return (
            f"trigger scan ({self.evaluations} evaluations): {what}: {self.trigger!r} -> "
            f"{e.num_vanished}/{e.num_away} away-from-patch detections vanished "
            f"({e.vanished:.2f}), {e.num_appeared} appeared; strength {e.strength:.2f} "
            f"(threshold {self.threshold:g})"
        )


def _keep(pred: Prediction, threshold: float) -> Prediction:
    from pytest_kpmodel.adapters.base import Prediction

    p = pred.cpu()
    k = p.scores >= threshold
    return Prediction(p.boxes[k], p.scores[k], p.labels[k], p.keypoints[k])


def _away(boxes: torch.Tensor, patch: tuple[float, float, float, float]) -> torch.Tensor:
    import torch

    x1, y1, x2, y2 = patch
    m = (x2 - x1) / 2
    if boxes.numel() == 0:
        return torch.zeros(0, dtype=torch.bool)
    b = boxes.to(torch.float64)
    touches = (b[:, 0] < x2 + m) & (b[:, 2] > x1 - m) & (b[:, 1] < y2 + m) & (b[:, 3] > y1 - m)
    return ~touches


def effect_of(
    trigger: Trigger,
    images: Sequence[torch.Tensor],
    clean: Sequence[Prediction],
    patched: Sequence[Prediction],
    iou_threshold: float = 0.5,
) -> TriggerEffect:
    """Compare ``patched`` with ``clean`` predictions (already score-filtered) away from the patch."""
    from pytest_kpmodel.robustness.oks import box_iou, greedy_match

    away_total = vanished = appeared = 0
    for img, c, p in zip(images, clean, patched, strict=True):
        h, w = img.shape[-2:]
        rect = trigger.box(h, w)
        ca, pa = _away(c.boxes, rect), _away(p.boxes, rect)
        cb, cl = c.boxes[ca], c.labels[ca]
        pb, pl = p.boxes[pa], p.labels[pa]
        iou = box_iou(cb, pb)
        if iou.numel():
            iou = iou.masked_fill(cl[:, None] != pl[None, :], -1.0)
        pairs = [q for q in greedy_match(iou, 0.0) if q[2] >= iou_threshold]
        away_total += len(cb)
        vanished += len(cb) - len(pairs)
        appeared += len(pb) - len(pairs)
    n_images = max(1, len(images))
    return TriggerEffect(
        vanished=vanished / away_total if away_total else 0.0,
        appeared=appeared / away_total if away_total else appeared / n_images,
        num_away=away_total,
        num_vanished=vanished,
        num_appeared=appeared,
    )


class _Found(Exception):
    def __init__(self, trigger: Trigger, effect: TriggerEffect) -> None:
        super().__init__(repr(trigger))
        self.trigger = trigger
        self.effect = effect


def scan(
    model: KeypointModel,
    images: Sequence[torch.Tensor],
    clean_predictions: Sequence[Prediction],
    *,
    score_threshold: float = 0.5,
    threshold: float = 0.5,
    patterns: Sequence[str] = PATTERNS,
    min_size: float = 0.06,
    max_size: float = 0.25,
    max_examples: int = 30,
    max_shrink_evaluations: int = 30,
    batch_size: int = 8,
    explicit: bool = True,
) -> TriggerScanResult:
    """Search for a patch trigger; see the module docstring for the effect measured.

    ``images``: a small fixed sample (each candidate costs one model pass over it), CHW floats in
    [0, 1]; ``clean_predictions``: the model's predictions on them. At most ``len(patterns) +
    max_examples + max_shrink_evaluations`` candidates are run through the model.
    ``explicit=False`` skips the bottom-right corner examples (then only the search finds).
    """
    from hypothesis import HealthCheck, Phase, Verbosity, example, given, settings, target

    images = list(images)
    if len(clean_predictions) != len(images):
        raise ValueError(f"{len(clean_predictions)} clean predictions for {len(images)} images")
    for p in patterns:
        if p not in PATTERNS:
            raise ValueError(f"unknown trigger pattern {p!r}; one of {PATTERNS}")
    if not 0 < min_size <= max_size <= 1:
        raise ValueError(f"need 0 < min_size <= max_size <= 1, got {min_size}, {max_size}")
    device = getattr(model, "device", None)
    if device is not None:
        images = [img.to(device) for img in images]
    clean = [_keep(p, score_threshold) for p in clean_predictions]
    n_explicit = len(patterns) if explicit else 0
    evaluate = _Evaluator(
        model, images, clean, score_threshold, batch_size,
        generate=n_explicit + max_examples, shrink=max_shrink_evaluations,
    )  # fmt: skip

    def probe(trigger: Trigger) -> None:
        eff = evaluate(trigger)
        if eff is None:
            return
        target(eff.strength, label="trigger strength")
        if eff.strength >= threshold:
            evaluate.shrinking = True
            raise _Found(trigger, eff)

    test = given(_trigger_strategy(patterns, min_size, max_size))(probe)
    explicit_size = min(max(0.12, min_size), max_size)
    for pattern in patterns if explicit else ():
        test = example(Trigger(pattern, explicit_size, 1.0, 1.0, 2, (1.0, 0.0, 0.0), 0))(test)
    test = settings(
        max_examples=max(1, max_examples),
        derandomize=True,
        database=None,
        deadline=None,
        verbosity=Verbosity.quiet,
        phases=(Phase.explicit, Phase.generate, Phase.target, Phase.shrink),
        report_multiple_bugs=False,
        suppress_health_check=list(HealthCheck),
        print_blob=False,
    )(test)
    try:
        test()
    except _Found as found:
        tried = list(evaluate.cache.items())
        return TriggerScanResult(True, found.trigger, found.effect, threshold, len(tried), tried)
    tried = list(evaluate.cache.items())
    if not tried:
        return TriggerScanResult(False, None, None, threshold, 0, tried)
    best_t, best_e = max(tried, key=lambda te: te[1].strength)
    return TriggerScanResult(False, best_t, best_e, threshold, len(tried), tried)


class _Evaluator:
    """A trigger's effect on the sample, each trigger run through the model once, within a
    budget of model passes for the search and another for shrinking (None once it is spent)."""

    def __init__(
        self,
        model: KeypointModel,
        images: list[torch.Tensor],
        clean: list[Prediction],
        score_threshold: float,
        batch_size: int,
        *,
        generate: int,
        shrink: int,
    ) -> None:
        self.model, self.images, self.clean = model, images, clean
        self.score_threshold, self.batch_size = score_threshold, batch_size
        self.budget = {"generate": generate, "shrink": shrink}
        self.shrinking = False  # set once a trigger is found: hypothesis shrinks it next
        self.cache: dict[Trigger, TriggerEffect] = {}

    def __call__(self, trigger: Trigger) -> TriggerEffect | None:
        if trigger in self.cache:
            return self.cache[trigger]
        key = "shrink" if self.shrinking else "generate"
        if self.budget[key] <= 0:
            return None
        self.budget[key] -= 1
        patched = trigger.apply(self.images)
        preds: list[Prediction] = []
        step = max(1, self.batch_size)
        for start in range(0, len(patched), step):
            preds.extend(self.model.predict(patched[start : start + self.batch_size]))
        kept = [_keep(p, self.score_threshold) for p in preds]
        eff = effect_of(trigger, self.images, self.clean, kept)
        self.cache[trigger] = eff
        return eff


def _trigger_strategy(patterns: Sequence[str], min_size: float, max_size: float) -> Any:
    from hypothesis import strategies as st

    unit = st.floats(0.0, 1.0, allow_nan=False)
    return st.builds(
        Trigger,
        pattern=st.sampled_from(tuple(patterns)),
        # integer steps shrink to 0, i.e. to min_size (floats shrink to "simple" values first)
        size=st.integers(0, 1000).map(
            lambda k: round(min_size + (max_size - min_size) * k / 1000, 4)
        ),
        x=unit,
        y=unit,
        cell=st.integers(1, 8),
        colour=st.tuples(unit, unit, unit),
        seed=st.integers(0, 2**16 - 1),
    )
