"""One acceptance run's state: the card, model, data and predictions, each computed once.

The plugin's session fixtures and hooks delegate here; nothing in this module knows pytest, so
the same run can be driven from plain Python or the CLI. Every failure is a ``KpModelError``
carrying one message for the user.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

from .card import ModelCard
from .errors import KpModelError
from .findings import CheckResult
from .marker_args import MarkerUse, parse_markers
from .provenance.digests import remembered_sha256
from .security.policy import SecurityPolicy
from .settings import Settings

T = TypeVar("T")

# What ``KpSession.computed`` answers for: the pieces a run computes at most once.
PIECES = frozenset({
    "card", "weights_digest", "device", "dist", "scan", "run_dir", "guard", "exercised",
    "model", "dataset", "ground_truth", "predictions", "baseline", "flip_consistency",
    "parity", "stability", "corruption_eval", "trigger_scan", "diff",
})  # fmt: skip


class KpSession:
    def __init__(
        self,
        settings: Settings,
        card_path: Path | None = None,
        parent: KpSession | None = None,
        role: str = "main",
    ) -> None:
        self.settings = settings
        self.card_path = card_path or settings.model
        # A baseline or variant run reports into its parent and shares its security policy.
        self.parent = parent
        self.role = role
        self.checks: list[dict[str, Any]] = []  # one entry per marker evaluation, for the report
        # Report sections added by features (bench, diff...); read through ``sections``.
        self._sections: dict[str, Any] = {}
        # Sections whose JSON costs work (the metrics' analyses), made when first read.
        self._pending_sections: list[Callable[[], None]] = []
        self.warnings: list[str] = []
        self._pieces: dict[Hashable, Any] = {}
        self._errors: dict[Hashable, KpModelError] = {}
        # What the spec's kp_security markers permit; the plugin sets it after collection.
        self.security_policy = parent.security_policy if parent else SecurityPolicy()
        # The corruption sweep's settings (kp_corruptions markers); robustness.probes defaults.
        self.corruption_config = None
        # kp_bench(...) settings of the tests that use kp_parity (measured once per run); the
        # plugin sets them after collection.
        self.parity_bench: dict[str, Any] = {}
        self.hypothesis_profile: str | None = None  # shown in the reproduction header

    # Failures are cached too: a broken card fails every dependent test with the same message
    # instead of re-running the failing work once per test.
    def _once(self, key: Hashable, compute: Callable[[], T]) -> T:
        if key in self._errors:
            raise self._errors[key]
        if key not in self._pieces:
            try:
                self._pieces[key] = compute()
            except KpModelError as exc:
                self._errors[key] = exc
                raise
        return self._pieces[key]

    def computed(self, piece: str) -> Any | None:
        """The piece (one of ``PIECES``: the name of its property, e.g. ``"predictions"``) when
        this run has computed it, else None. Never computes anything: the report and the
        plugin's hooks show what the run did without making it do more."""
        if piece not in PIECES:
            raise ValueError(f"{piece!r} is not a piece of the run; one of {sorted(PIECES)}")
        return self._pieces.get(piece)

    @property
    def root(self) -> KpSession:
        """The run this session belongs to (a baseline or variant's parent, up to the top)."""
        return self if self.parent is None else self.parent.root

    @property
    def has_model(self) -> bool:
        return self.card_path is not None

    def configure(
        self,
        *,
        security: Iterable[MarkerUse] = (),
        corruptions: Iterable[MarkerUse] = (),
        parity_bench: Iterable[MarkerUse] = (),
    ) -> None:
        """What the spec's markers set for the whole run, read once after collection: every
        ``kp_security`` widens the policy (it guards loading, which happens before any
        security test runs); ``kp_corruptions`` picks the one corruption sweep; the
        ``kp_bench(...)`` of the tests that use ``kp_parity`` times the one variants table.
        A marker that does not parse, or tests that disagree: ``KpModelError`` naming them."""
        from .bench.parity import parity_bench_for_run
        from .robustness.probes import CorruptionConfig

        policy = self.security_policy
        for asked in parse_markers(security, SecurityPolicy.from_marker):
            policy = policy.union(asked)
        self.security_policy = policy
        self.corruption_config = CorruptionConfig.for_run(corruptions)
        self.parity_bench = parity_bench_for_run(parity_bench)

    # -- card and weights ------------------------------------------------------------------------
    @property
    def card(self) -> ModelCard:
        def compute():
            if self.card_path is None:
                raise KpModelError("no model: pass --kp-model")
            from .provenance.unpinned import load_card_or_checkpoint

            # A bare checkpoint gets the card `kpmodel card init` would write, unpinned.
            return load_card_or_checkpoint(self.card_path)

        return self._once("card", compute)

    @property
    def weights_digest(self) -> str | None:
        def compute():
            w, memo = self.card.model.weights, self.settings.cache_dir
            memo = memo.parent / "digests" if memo and not self.settings.no_cache else None
            return remembered_sha256(w, memo) if w is not None else None

        return self._once("weights_digest", compute)

    @property
    def digest_mismatch(self) -> str | None:
        """A message when the weights do not match the card's pinned sha256 (None when they do)."""
        pinned, actual = self.card.model.sha256, self.weights_digest
        if pinned and actual and pinned != actual:
            return (
                f"{self.card.model.weights}: sha256 {actual[:12]}… does not match the card's "
                f"[model.sha256] {pinned[:12]}…"
            )
        return None

    @property
    def device(self) -> str:
        def compute():
            from .distributed.environment import rank_device

            # cuda -> cuda:LOCAL_RANK under torchrun, cuda:K for xdist worker gwK (several GPUs).
            return rank_device(self.settings.device)

        return self._once("device", compute)

    @property
    def dist(self):
        """The run's ranks under torchrun (``distributed.Group``; one rank otherwise): shared
        by the baseline and variant sessions, which run the same collectives on every rank."""

        def compute():
            if self.parent is not None:
                return self.parent.dist
            from .distributed.process_group import Group

            return Group.from_env(self.device)

        return self._once("dist", compute)

    @property
    def allow_code(self) -> bool:
        return self.settings.allow_code or self.security_policy.code

    # -- security ----------------------------------------------------------------------------------
    @property
    def scan(self):
        """The static scan of the weights (``ScanReport``), or None when the card has none."""

        def compute():
            from .security import scan_path

            weights = self.card.model.weights
            if weights is None:
                return None
            return scan_path(
                weights,
                extra_globals=self.security_policy.allow_globals,
                allow_code=self.allow_code,
                allowlists=self.allowlists,
            )

        return self._once("scan", compute)

    @property
    def allowlists(self) -> tuple[str, ...]:
        """Opt-in reviewed allow-lists: the card's ``[model] allowlist`` and the spec's
        ``kp_security(allowlist=[...])``."""
        card = tuple(getattr(self.card.model, "allowlist", ()))
        return tuple(dict.fromkeys(card + self.security_policy.allowlist))

    @property
    def run_dir(self) -> Path:
        """This run's scratch folder: the only place model code may write; ONNX and .pt2
        exports go there too. Made on first use (a baseline's or variant's inside its
        parent's); the root run's ``close()`` removes it."""

        def compute():
            import tempfile

            if self.parent is None:
                return Path(tempfile.mkdtemp(prefix="kpmodel-run-"))
            return Path(tempfile.mkdtemp(prefix=f"{self.role}-", dir=self.parent.run_dir))

        return self._once("run_dir", compute)

    def close(self) -> None:
        """The run is over: remove its scratch folder (with its baseline's and variants'
        inside). Nothing else is touched: the report and the prediction cache stay."""
        import shutil

        folder = self._pieces.pop("run_dir", None)
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)

    def __enter__(self) -> KpSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def guard(self):
        """Blocks and records network, subprocess and writes while the model loads and runs."""

        def compute():
            from .security import RuntimeGuard

            policy = self.security_policy
            return RuntimeGuard(
                network=policy.network,
                subprocess=policy.subprocess,
                writes=policy.writes,
                allowed_write_dirs=[self.run_dir],
                # CUDA initialisation may dlopen driver libraries through ctypes.
                ctypes=self.device.startswith("cuda"),
                name=self.card_path.name if self.card_path else "model",
            )

        return self._once("guard", compute)

    def exercise_model(self) -> None:
        """Load the model and predict once, so the guard has seen its code run."""

        def compute() -> bool:
            import torch

            model = self.model
            try:
                from .data import load_images

                images = [load_images(self.dataset, [0])[0].float().div_(255)]
            except KpModelError:
                images = [torch.full((3, 96, 128), 0.5)]
            model.predict(images)
            return True

        self._once("exercised", compute)

    # -- model -----------------------------------------------------------------------------------
    @property
    def model(self):
        return self._once("model", self._load_model)

    def _load_model(self):
        from .adapters import load_model
        from .adapters.options import LoadOptions
        from .security.guarded_model import GuardedModel

        card = self.card
        if self.settings.precision not in ("fp32", "fp16", "bf16"):
            raise KpModelError(
                f"--kp-precision={self.settings.precision!r}: use fp32, fp16 or bf16"
            )
        if self.digest_mismatch:
            self.warnings.append(self.digest_mismatch)
        scan = self.scan
        if scan is not None:
            scan.raise_if_unsafe()  # RefusedToLoad("refused to load: <finding>")
        options = LoadOptions(
            device=self.device,
            precision=self.settings.precision,
            allow_code=self.allow_code,
            scan_report=scan,
            extra_globals=self.security_policy.allow_globals,
            allowlists=self.allowlists,
        )
        # torchvision registers its native ops (nms, roi_align) by loading a shared library on
        # first import; that is the environment's code, not the model's, so it happens before
        # the guard (which would block the dlopen) is switched on.
        import torchvision.models.detection  # noqa: F401
        import torchvision.ops  # noqa: F401

        with self.guard.active():
            model = load_model(card, options)
        return GuardedModel(model, self.guard)

    # -- data and predictions --------------------------------------------------------------------
    def dataset_source(self) -> tuple[Path | None, Path | None]:
        """The evaluation set's annotation file and image folder: ``--kp-dataset`` (with
        ``--kp-images``), else the card's ``[dataset]`` (``--kp-images`` still wins)."""
        if self.settings.dataset is not None:
            return self.settings.dataset, self.settings.images
        return self.card.dataset.annotations, self.settings.images or self.card.dataset.images

    @property
    def dataset(self):
        def compute():
            from .data import load_dataset

            ann, images = self.dataset_source()
            if ann is None:
                raise KpModelError(
                    "no evaluation set: pass --kp-dataset or set [dataset] annotations in "
                    f"{self.card.path}"
                )
            return load_dataset(
                ann,
                images,
                self.settings.max_images,
                area_from_box=self.area_from_box,
                keypoints=self.card.keypoints,
            )

        return self._once("dataset", compute)

    @property
    def allow_box_area(self) -> bool:
        """--kp-allow-box-area, or the card's [dataset] allow_box_area for its own set."""
        own = self.settings.dataset is None and self.card.dataset.allow_box_area
        return self.settings.allow_box_area or own

    @property
    def area_from_box(self) -> float | None:
        """--kp-area-from-box, or the card's [dataset] area_from_box for its own set."""
        if self.settings.area_from_box is not None:
            return self.settings.area_from_box
        return self.card.dataset.area_from_box if self.settings.dataset is None else None

    def check_ground_truth(self) -> list[str]:
        """The evaluation set's ground truth checked whole, and against the card's keypoints,
        before anything predicts (a refusal in seconds, not after the inference); the notes
        are the run's warnings."""

        def compute():
            from .metrics.accuracy import check_session_ground_truth

            notes = check_session_ground_truth(self)
            for note in notes:
                line = f"{self.dataset.annotations_path.name}: {note}"
                if line not in self.root.warnings:
                    self.root.warnings.append(line)
            return notes

        return self._once("ground_truth", compute)

    @property
    def predictions(self):
        return self._once("predictions", self._predict)

    def prediction_key(self) -> str:
        from .distributed.cache import prediction_key

        return prediction_key(self)

    def _predict(self):
        from .distributed.cache import session_predictions

        return session_predictions(self)

    # -- baseline ---------------------------------------------------------------------------------
    @property
    def baseline(self) -> KpSession:
        def compute():
            path = self.settings.baseline or self.card.provenance.base
            if path is None:
                raise KpModelError(
                    f"no baseline: pass --kp-baseline or set [provenance] base in {self.card.path}"
                )
            # The baseline is evaluated on the adopter's data, with the same settings.
            ann, images = self.dataset_source()
            # The set's reading flags travel with it (the card's own [dataset] ones included).
            settings = replace(self.settings, dataset=ann, images=images, baseline=None,
                               allow_box_area=self.allow_box_area,
                               area_from_box=self.area_from_box)  # fmt: skip
            return KpSession(settings, Path(path), parent=self, role="baseline")

        return self._once("baseline", compute)

    # -- accuracy ---------------------------------------------------------------------------------
    def eval_at(self, confidence: float | None = None):
        """COCO metrics of the cached predictions; bootstrap intervals at ``confidence``
        (None: the default 0.95). Computed once per confidence level."""
        from .metrics.accuracy import evaluate_predictions

        level = 0.95 if confidence is None else float(confidence)

        def compute():
            preds = self.predictions  # on every rank first: it is a collective under torchrun
            # Evaluated once (rank 0) and broadcast, so every rank's gates see the same numbers.
            m = self.dist.on_main(
                f"eval {preds.key[:12]} {level}",
                lambda: evaluate_predictions(self, preds, confidence=level),
            )
            if level == 0.95:
                self._publish_metrics(m)
            return m

        return self._once(("eval", level), compute)

    @property
    def eval(self):
        return self.eval_at(None)

    @property
    def sections(self) -> dict[str, Any]:
        """The report sections (kp-report.json), each a JSON value. The metrics section (with
        its bootstrap intervals and analyses) is made when the sections are first read after
        the evaluation, by the report or an xdist worker's output: a run without either
        never computes the analyses no gate asked for."""
        while self._pending_sections:
            self._pending_sections.pop(0)()
        return self._sections

    def _publish_metrics(self, metrics) -> None:
        if self.parent is None:

            def publish() -> None:
                flip = self._sections.get("metrics", {}).get("flip_consistency")
                self._sections["metrics"] = metrics.to_json()
                if flip is not None:
                    self._sections["metrics"]["flip_consistency"] = flip

            self._pending_sections.append(publish)
        elif self.role == "baseline":
            card, parent = self.card, self.parent

            def publish_baseline() -> None:
                parent._sections.setdefault("baseline", {}).update(
                    model={"name": card.model.name, "version": card.model.version},
                    metrics=metrics.to_json(),
                )

            parent._pending_sections.append(publish_baseline)

    @property
    def flip_consistency(self):
        def compute():
            from .robustness.probes import flip_consistency

            return flip_consistency(self)

        return self._once("flip_consistency", compute)

    def variant(self, **changes) -> KpSession:
        """The same model and data under other settings (e.g. precision), sharing this run's
        security policy; computed once per distinct change."""
        key = ("variant", *sorted(changes.items()))
        if all(getattr(self.settings, k) == v for k, v in changes.items()):
            return self

        settings = replace(self.settings, **changes)
        return self._once(key, lambda: KpSession(settings, self.card_path, parent=self,
                                                 role="variant"))  # fmt: skip

    def precision_drop(self, precision: str, run_emulated_bf16: bool = False):
        def compute():
            from .bench.precision import emulated_bf16_drop_reason as why
            from .distributed.cache import is_cached
            from .metrics.accuracy import precision_drop

            skip = None if run_emulated_bf16 else lambda fp32, bf16: why(fp32, bf16, is_cached)
            drop = precision_drop(self, precision, skip)
            self._sections.setdefault("precision_drop", {})[precision] = drop.to_json()
            return drop

        return self._once(("precision_drop", precision, run_emulated_bf16), compute)

    # -- speed ------------------------------------------------------------------------------------
    def bench(self, benchmark: Any = None, **settings: Any):
        """``bench.measure`` under ``kp_bench(...)`` ``settings`` (the caller merges a test's
        marker with its call, later wins); each distinct setting is measured once per run and
        added to the report's ``bench`` list. ``benchmark``: a callable giving
        pytest-benchmark's fixture, asked for only when this call really measures (so a
        cached result leaves the fixture unused and unrequested)."""
        from .bench.measure import measure
        from .bench.settings import BenchSettings

        chosen = BenchSettings.from_kwargs(**settings)
        text = repr(sorted(chosen.to_json().items()))

        def compute():
            # Under torchrun rank 0 measures and every rank gates on its numbers.
            result = self.dist.on_main(
                f"bench {text}",
                lambda: measure(
                    self.model, self.dataset, chosen, benchmark=benchmark and benchmark()
                ),
            )
            if self.parent is None:
                self._sections.setdefault("bench", []).append(result.to_json())
            elif self.role == "baseline":
                into = self.parent._sections.setdefault("baseline", {})
                into.setdefault("bench", []).append(result.to_json())
            return result

        return self._once(("bench", text), compute)

    def bench_vs_baseline(self, **settings: Any):
        """This model against its baseline, timed in alternating rounds on the same images
        under ``kp_bench(...)`` ``settings`` (``bench.relative``); once per distinct setting,
        into the report's ``bench_vs_baseline`` list."""
        from .bench.relative import measure_relative

        text = repr(sorted(settings.items()))
        return self._once(("bench_vs_baseline", text), lambda: measure_relative(self, settings))

    @property
    def parity(self):
        def compute():
            from .bench.parity import parity_settings, run
            from .metrics.accuracy import variant_metrics

            self.check_ground_truth()  # refuse a bad ground truth before predicting

            # Bounded by the kp_bench(...) of its tests (parity_settings): each variant predicts
            # the first num_images images (emulated bf16 on CPUs without native support costs
            # 27-170x fp32 per convolution: bench.parity skips its timing, or the row) and is
            # timed with warmup per shape + iters calls.
            settings = parity_settings(self.parity_bench)
            ds = self.dataset
            ds = ds.subset(list(range(min(len(ds), settings.num_images))))
            table = run(
                self.model,
                self.card,
                ds,
                evaluate_fn=lambda ps: variant_metrics(self, ps),
                settings=settings,
                workdir=self.run_dir / "parity",
                batch_size=self.settings.batch_size,
            )
            self._sections["parity"] = table.to_json()
            return table

        return self._once("parity", compute)

    # -- robustness -------------------------------------------------------------------------------
    @property
    def stability(self):
        def compute():
            from .robustness.probes import StabilityProbe

            return StabilityProbe(self)

        return self._once("stability", compute)

    @property
    def corruption_eval(self):
        def compute():
            from .robustness.probes import CorruptionConfig, corruption_eval

            self.check_ground_truth()  # refuse a bad ground truth before predicting
            return corruption_eval(self, self.corruption_config or CorruptionConfig())

        return self._once("corruption_eval", compute)

    @property
    def trigger_scan(self):
        def compute():
            from .robustness.probes import trigger_scan

            return trigger_scan(self)

        return self._once("trigger_scan", compute)

    @property
    def diff(self):
        """What changed against the baseline model; also the report's ``diff`` section."""

        def compute():
            from .provenance.diff import session_diff

            d = session_diff(self)
            self._sections["diff"] = d.to_json()
            return d

        return self._once("diff", compute)

    # -- report bookkeeping -------------------------------------------------------------------------
    def record_check(self, nodeid: str, marker: str, result: CheckResult) -> None:
        entry = {"nodeid": nodeid, "marker": marker, **result.to_json()}
        self.checks.append(entry)
