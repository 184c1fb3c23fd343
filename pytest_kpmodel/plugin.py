"""pytest hooks and fixtures for pytest-kpmodel, and what reads pytest's options and markers
for them: each hook and fixture delegates to the run (``session.KpSession``) or a package.

Importing this module must not import torch: ``pytest --help`` in a project that has the plugin
installed but does not use it pays nothing for it.

Names: ``session`` is always pytest's ``Session``; the run (a ``KpSession``) is ``kp``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pytest

from .checks import MARKERS_DOC
from .errors import KpModelError

if TYPE_CHECKING:
    from .marker_args import MarkerUse
    from .required import Ledger, Outcome
    from .session import KpSession
    from .settings import Settings

T = TypeVar("T")

NO_MODEL = "no model: pass --kp-model"
KP_FIXTURES = frozenset(
    {
        "kp_card",
        "kp_scan",
        "kp_model",
        "kp_dataset",
        "kp_predictions",
        "kp_eval",
        "kp_baseline_eval",
        "kp_bench",
        "kp_diff",
        "kp_stability",
        "kp_corruption_eval",
        "kp_trigger_scan",
        "kp_parity",
        "kp_precision_drop",
        "kp_flip_consistency",
        "kp_session",
    }
)


@dataclass(frozen=True)
class _Opt:
    dest: str  # also the ini key
    help: str
    kind: str = "str"  # str | path | int | float | bool | choice
    default: Any = None
    choices: tuple[str, ...] = ()
    metavar: str | None = None

    @property
    def flag(self) -> str:
        return "--" + self.dest.replace("_", "-")


OPTIONS = (
    _Opt("kp_model", "model card (kpmodel.toml, or its folder) under test; without it every "
         "kp_* test is skipped", "path", metavar="PATH"),
    _Opt("kp_dataset", "COCO keypoint annotation file to evaluate on (default: the card's "
         "[dataset])", "path", metavar="PATH"),
    _Opt("kp_images", "folder of the --kp-dataset images (default: images/ beside the "
         "annotations, else their folder)", "path", metavar="DIR"),
    _Opt("kp_device", "cpu, cuda or cuda:N (default: cuda when available)", metavar="DEVICE"),
    _Opt("kp_baseline", "a second card to compare against (default: the card's "
         "provenance.base)", "path", metavar="PATH"),
    _Opt("kp_report", "write kp-report.json and index.html into DIR", "path", metavar="DIR"),
    _Opt("kp_max_images", "evaluate on the first N images only", "int", metavar="N"),
    _Opt("kp_batch_size", "images per inference batch (default 1)", "int", 1, metavar="N"),
    _Opt("kp_precision", "inference precision (default fp32)", "choice", "fp32",
         ("fp32", "fp16", "bf16")),
    _Opt("kp_allow_code", "permit formats that run the model's own code (python, torchscript)",
         "bool", False),
    _Opt("kp_no_cache", "recompute predictions instead of reusing the on-disk cache", "bool",
         False),
    _Opt("kp_metrics_engine", "COCO evaluation backend: auto, pycocotools, faster-coco-eval or "
         "hotcoco (default auto: the fastest installed exact one)", "str", "auto", metavar="NAME"),
    _Opt("kp_osv_db", "a local OSV export (PyPI zip or folder of JSON) for the vulnerability "
         "check", "path", metavar="PATH"),
    _Opt("kp_sbom", "write a CycloneDX SBOM of the environment and the model to FILE", "path",
         metavar="FILE"),
    _Opt("kp_seed", "seed for sampling, perturbations and bootstrap (default 0)", "int", 0,
         metavar="N"),
    _Opt("kp_workers", "image-decoding worker processes (default: by CPU count)", "int",
         metavar="N"),
    _Opt("kp_allow_box_area", "accept a --kp-dataset whose every 'area' is its box w*h "
         "(OCHuman); OKS is then more lenient than with COCO's segment areas (card: [dataset] "
         "allow_box_area)", "bool", False),
    _Opt("kp_area_from_box", "give annotations without 'area' F * box w*h (CrowdPose's "
         "evaluation: 0.53; card: [dataset] area_from_box)", "float", metavar="F"),
    _Opt("kp_summary", "write the verdict (gate table, findings, checks that did not run) as "
         "GitHub-flavoured Markdown to FILE, e.g. $GITHUB_STEP_SUMMARY", "path", metavar="FILE"),
    _Opt("kp_require", "checks that must run, comma-separated (e.g. gpu,fp16,vram,signature): "
         "their skips fail with the reason, and a run in which none evaluated one fails; an "
         "unknown name lists the valid ones", "names", frozenset(), metavar="NAMES"),
)  # fmt: skip


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("kpmodel", "keypoint model acceptance (pytest-kpmodel)")
    for opt in OPTIONS:
        ini_help = f"{opt.help} [same as {opt.flag}]"
        if opt.kind == "bool":
            group.addoption(opt.flag, action="store_true", default=None, dest=opt.dest,
                            help=opt.help)  # fmt: skip
            parser.addini(opt.dest, ini_help, type="bool", default=opt.default)
        else:
            group.addoption(opt.flag, dest=opt.dest, default=None, metavar=opt.metavar,
                            choices=opt.choices or None, help=opt.help)  # fmt: skip
            parser.addini(opt.dest, ini_help, default=None)


def _read_option(config: pytest.Config, opt: _Opt) -> Any:
    """Command line first, then the ini key; ini paths are relative to the ini file."""
    value = config.getoption(opt.dest)
    from_ini = value is None
    if from_ini:
        value = config.getini(opt.dest)
        if value in (None, "", []):
            return opt.default
    if opt.kind == "bool":
        return bool(value)
    if opt.kind == "names":
        from .required import parse

        try:
            return parse(value, opt.dest if from_ini else opt.flag)
        except KpModelError as exc:
            raise pytest.UsageError(str(exc)) from None
    if opt.kind == "int":
        try:
            return int(value)
        except (TypeError, ValueError):
            raise pytest.UsageError(f"{opt.flag}: expected an integer, got {value!r}") from None
    if opt.kind == "float":
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise pytest.UsageError(f"{opt.flag}: expected a number, got {value!r}") from None
        if not 0 < number <= 1:
            raise pytest.UsageError(f"{opt.flag}: must be in (0, 1], got {value!r}")
        return number
    if opt.kind == "choice" and value not in opt.choices:
        raise pytest.UsageError(f"{opt.flag}: {value!r} is not one of {', '.join(opt.choices)}")
    if opt.kind == "path":
        base = (
            Path(config.inipath).parent
            if from_ini and config.inipath
            else Path(config.invocation_params.dir)
        )
        return (base / Path(str(value)).expanduser()).resolve()
    return value


def _check_ini_keys(config: pytest.Config) -> None:
    """A ``kp_*`` ini key this plugin does not know stops the run, naming its likely fix
    (pytest itself only warns, and a typo must not silently drop a setting)."""
    from .errors import did_you_mean

    known = [opt.dest for opt in OPTIONS]
    present = getattr(config, "_inicfg", None) or {}  # pytest has no public list of the keys
    for key in sorted(k for k in present if k.startswith("kp") and k not in known):
        where = config.inipath.name if config.inipath else "ini file"
        raise pytest.UsageError(
            f"{where}: {key}: unknown pytest-kpmodel ini key; {did_you_mean(key, known)}"
            f"allowed: {', '.join(known)}"
        )


def _settings(config: pytest.Config) -> Settings:
    from .settings import Settings

    _check_ini_keys(config)
    values = {opt.dest.removeprefix("kp_"): _read_option(config, opt) for opt in OPTIONS}
    return Settings(**values, rootdir=Path(config.rootpath))


# -- the run, and the two ways a fixture gives up ---------------------------------------------------
_KP = pytest.StashKey["KpSession"]()
_SETTINGS = pytest.StashKey["Settings"]()
_TMP = pytest.StashKey[pytest.TempPathFactory]()
_LEDGER = pytest.StashKey["Ledger"]()


def _note(item: pytest.Item, outcome: Outcome) -> list[str]:
    """Record which named checks ``item`` ran and did not run, as JUnit properties (collected
    back from the reports by ``_LedgerPlugin``, also under xdist); the failure messages of
    those that did not run and ``--kp-require`` requires."""
    from .required import expand

    item.user_properties.extend(outcome.properties())
    return outcome.failures(expand(item.config.stash[_SETTINGS].require))


class _LedgerPlugin:
    """Collects the not-run and ran properties of every test report (xdist: the controller
    sees the workers' reports) for the terminal summary, --kp-summary and --kp-require."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.ledger.add(report.nodeid, report.user_properties)


def _has_model(config: pytest.Config) -> bool:
    return config.stash[_SETTINGS].model is not None


def _kp(config: pytest.Config) -> KpSession:
    """The run, built on first use: a pytest run that selects no kp test never builds it
    (nor imports the card, security or session modules)."""
    kp = config.stash.get(_KP, None)
    if kp is None:
        from dataclasses import replace

        from .session import KpSession

        settings = config.stash[_SETTINGS]
        cache = getattr(config, "cache", None)  # None with -p no:cacheprovider
        if settings.cache_dir is None and cache is not None:
            settings = replace(settings, cache_dir=cache.mkdir("kpmodel") / "predictions")
        kp = config.stash[_KP] = KpSession(settings)
        # Shown in the header; loaded (unless the user chose one) only when a test uses
        # hypothesis: see _load_hypothesis_profile.
        kp.hypothesis_profile = config.getoption("hypothesis_profile", None) or "kpmodel"
    return kp


def _kp_with_model(request: pytest.FixtureRequest) -> KpSession:
    """The run, for a fixture; without ``--kp-model`` the test skips."""
    kp = _kp(request.config)
    if not kp.has_model:
        pytest.skip(NO_MODEL)
    return kp


def _or_fail(compute: Callable[[], T], skip_on: tuple[type[KpModelError], ...] = ()) -> T:
    """``compute()``; a ``KpModelError`` fails the test with its message alone (``skip_on``
    errors skip it with theirs instead)."""
    try:
        return compute()
    except skip_on as exc:
        reason, message = str(exc), None
    except KpModelError as exc:
        reason, message = None, str(exc)
    # Outside the except: no chained traceback.
    if message is None:
        pytest.skip(reason)
    pytest.fail(message, pytrace=False)


@contextmanager
def _usage_error() -> Iterator[None]:
    """A bad marker found at collection stops the run with its message."""
    try:
        yield
    except KpModelError as exc:
        raise pytest.UsageError(str(exc)) from None


def _fixtures(item: pytest.Item) -> set[str]:
    return set(getattr(item, "fixturenames", ()))


def _bench_settings(node: pytest.Item) -> dict[str, Any]:
    """The node's ``kp_bench(...)`` settings, handed to whatever measures speed for it (as
    pytest-benchmark's fixture reads its ``benchmark`` marker)."""
    mark = node.get_closest_marker("kp_bench")
    return dict(mark.kwargs) if mark else {}


def _uses(items: list[pytest.Item], marker: str) -> list[MarkerUse]:
    return [
        (item.nodeid, mark.args, dict(mark.kwargs))
        for item in items
        for mark in item.iter_markers(marker)
    ]


# -- hooks ------------------------------------------------------------------------------------------
def pytest_configure(config: pytest.Config) -> None:
    """Marker docs and the options, read (and refused when bad) now; nothing else: a run
    that selects no kp test pays for nothing more (the run is built by ``_kp`` on first use,
    the hypothesis profile is registered by hypothesis' own entry point when hypothesis is
    imported: ``hypothesis_profile.register``)."""
    _configure_progress(config)
    for doc in MARKERS_DOC.values():
        config.addinivalue_line("markers", doc)
    config.stash[_SETTINGS] = _settings(config)
    from .required import Ledger

    ledger = config.stash[_LEDGER] = Ledger(required=config.stash[_SETTINGS].require)
    config.pluginmanager.register(_LedgerPlugin(ledger), "kpmodel-ledger")


# Fixtures whose probes draw with hypothesis.
_HYPOTHESIS_FIXTURES = frozenset({"kp_stability", "kp_trigger_scan"})


def _load_hypothesis_profile(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Derandomized and bounded (the ``kpmodel`` profile) unless the user picked a hypothesis
    profile; only when a collected test uses hypothesis (its module imported it) or a
    robustness fixture that does, so that other runs never import it."""
    if config.getoption("hypothesis_profile", None):
        return
    import sys

    if "hypothesis" in sys.modules or any(_fixtures(i) & _HYPOTHESIS_FIXTURES for i in items):
        from .hypothesis_profile import register

        register(load=True)


def _configure_progress(config: pytest.Config) -> None:
    """Tell ``progress`` whether the long steps show their line and bar: pytest's verbosity
    (quiet under ``-q``) and whether stderr is a terminal, read now, while the output capture is
    suspended (so this is the real stderr); and how to step out of the capture for each write,
    since the steps run inside tests and fixtures."""
    import sys

    from . import progress

    capman = config.pluginmanager.getplugin("capturemanager")
    progress.configure(
        verbosity=config.get_verbosity(),
        isatty=bool(getattr(sys.stderr, "isatty", lambda: False)()),
        suspend=capman.global_and_fixture_disabled if capman is not None else None,
    )


def _is_main(config: pytest.Config) -> bool:
    """Not an xdist worker, and rank 0 (or the only rank) under torchrun: the process that
    prints kpmodel's header and summary and writes reports; pytest's own output is per rank."""
    from .distributed.environment import is_main_process

    return not hasattr(config, "workerinput") and is_main_process()


def pytest_report_header(config: pytest.Config) -> list[str] | None:
    if not _has_model(config) or not _is_main(config):
        return None
    from .header import reproduction_header
    from .metrics.engines import auto_engine_note

    note = auto_engine_note(config.stash[_SETTINGS].metrics_engine)
    return [reproduction_header(_kp(config)), *([note] if note else [])]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not _has_model(config):
        skip = pytest.mark.skip(reason=NO_MODEL)
        for item in items:
            if _fixtures(item) & KP_FIXTURES or any(
                m.name.startswith("kp_") for m in item.iter_markers()
            ):
                item.add_marker(skip)
                item.user_properties.append(("kpmodel not run", f"test: {NO_MODEL}"))
        return
    from .distributed.xdist import xdist_reason
    from .gates import needs_speed

    kp = _kp(config)
    _load_hypothesis_profile(config, items)

    reason = xdist_reason(config)
    if reason:
        from .required import expand

        for item in items:
            if needs_speed(_fixtures(item), [(m.name, m.kwargs) for m in item.iter_markers()]):
                if "speed" in expand(kp.settings.require):
                    raise pytest.UsageError(
                        f"--kp-require=speed: {item.nodeid} times the model, and {reason}"
                    )
                item.add_marker(pytest.mark.skip(reason=reason))
                item.user_properties.append(("kpmodel not run", f"speed: {reason}"))
    with _usage_error():
        kp.configure(
            security=_uses(items, "kp_security"),
            corruptions=_uses(items, "kp_corruptions"),
            parity_bench=[
                (item.nodeid, (), _bench_settings(item))
                for item in items
                if "kp_parity" in _fixtures(item)
            ],
        )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item):
    """Evaluate the item's kp_* markers before its body; all findings fail it at once."""
    marks = [mark for mark in item.iter_markers() if mark.name.startswith("kp_")]
    if not marks:  # not a kp test: the run is not built for it
        return (yield)
    from .checks import evaluate
    from .required import of_marker

    kp = _kp(item.config)
    bench = _bench_settings(item)
    failures: list[str] = []
    skipped: list[str] = []
    for mark in marks:
        try:
            result = evaluate(mark.name, kp, mark.args, dict(mark.kwargs), bench=bench)
        except KpModelError as exc:
            failures.append(f"{mark.name}: {exc}")
            continue
        if result is None:
            continue
        kp.record_check(item.nodeid, mark.name, result)
        for gate in result.gates:  # JUnit XML <property> entries, for CI dashboards
            item.user_properties.append((f"kpmodel {gate.name} value", gate.value))
            item.user_properties.append(
                (f"kpmodel {gate.name} threshold", f"{gate.op} {gate.threshold}")
            )
        if result.skipped:
            skipped.append(f"{mark.name}: {result.skipped}")
        failures += [f"{mark.name}: {msg}" for msg in result.failures]
        # --kp-require: a required check that did not run fails instead of skipping
        failures += [
            f"{mark.name}: {msg}" for msg in _note(item, of_marker(mark.name, mark.kwargs, result))
        ]
    if failures:
        pytest.fail("\n".join(failures), pytrace=False)
    if skipped:
        pytest.skip("; ".join(skipped))
    return (yield)


@pytest.hookimpl(optionalhook=True)
def pytest_benchmark_update_machine_info(config: pytest.Config, machine_info: dict) -> None:
    """GPU name, driver, CUDA and torch versions, so --benchmark-compare knows the machine;
    and the machine's load while the run timed (the busiest reading)."""
    if _has_model(config):
        from .bench.machine import machine_info_extra

        machine_info.update(machine_info_extra(_kp(config).sections.get("bench", [])))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """A failed stability test keeps its (shrunk) perturbation: images and the repro line."""
    report = yield
    if report.when == "call" and "kp_parity" in _fixtures(item):
        _note_parity(item, report)
    if report.when == "call" and report.failed and "kp_stability" in _fixtures(item):
        kp = _kp(item.config)
        probe = kp.computed("stability")
        if probe is not None and probe.last is not None:
            # Without --kp-report: pytest's temporary folder, which outlives the run (the
            # run's own scratch folder does not).
            folder = kp.settings.report or item.config.stash[_TMP].getbasetemp() / "kpmodel"
            try:
                entry = probe.save_last(folder / "stability", item.nodeid)
            except KpModelError as exc:
                entry = {"saved": [], "error": str(exc)}
            lines = [f"reproduce with: kp_stability({probe.last[0]!r})"]
            lines += [f"saved: {path}" for path in (entry or {}).get("saved", [])]
            report.sections.append(("kpmodel", "\n".join(lines)))
    return report


def _note_parity(item: pytest.Item, report: pytest.TestReport) -> None:
    """The parity variants (fp16, bf16, onnx, exported) the test's table skipped: listed as not
    run; a required one fails the test that passed."""
    parity = _kp(item.config).computed("parity")
    if parity is None:
        return
    from .required import of_parity

    before = len(item.user_properties)
    failures = _note(item, of_parity(parity.rows))
    report.user_properties = list(report.user_properties) + item.user_properties[before:]
    if failures and report.passed:
        report.outcome = "failed"
        report.longrepr = "kp_parity: " + "\n".join(failures)


def _finish_gate(session: pytest.Session) -> None:
    """--kp-require's required checks that no test evaluated fail the run; --kp-summary is
    written (also without a model: a CI step that shows it must not find it missing)."""
    config = session.config
    if hasattr(config, "workerinput") or not _is_main(config):
        return
    settings, ledger = config.stash[_SETTINGS], config.stash[_LEDGER]
    kp = config.stash.get(_KP, None) if _has_model(config) else None
    if ledger.never_evaluated(kp) and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    if settings.summary is None:
        return
    from .report.markdown import write_summary

    tr = config.pluginmanager.get_plugin("terminalreporter")
    try:
        outcome = ", ".join(text for text, _ in tr.build_summary_stats_line()[0]) if tr else None
    except AttributeError:  # another pytest's terminal reporter
        outcome = None
    entries = [e.to_json() for e in ledger.not_run(kp)]
    warning = write_summary(settings.summary, kp, entries, outcome)
    if warning and kp is not None:
        kp.warnings.append(warning)


def pytest_sessionfinish(session: pytest.Session) -> None:
    _finish_gate(session)
    if not _has_model(session.config):
        return
    kp = _kp(session.config)
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None and kp.has_model:  # xdist worker: the controller reports
        from .distributed.xdist import WORKER_OUTPUT_KEY, worker_output
        from .report.json_report import add_security_section

        add_security_section(kp)  # the scan and guard events travel with the checks
        workeroutput[WORKER_OUTPUT_KEY] = worker_output(kp)
    if not _is_main(session.config) or not kp.has_model:
        return
    if kp.settings.sbom is not None:
        from .policy import write_session_sbom

        try:
            write_session_sbom(kp)
        except KpModelError as exc:
            kp.warnings.append(f"SBOM not written: {exc}")
    if kp.settings.report is not None:
        from .report.write import write_report

        write_report(kp, kp.settings.report)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error) -> None:
    """xdist controller: merge a finished worker's checks and report sections."""
    output = getattr(node, "workeroutput", None) or {}
    from .distributed.xdist import WORKER_OUTPUT_KEY, merge_worker_output

    if WORKER_OUTPUT_KEY in output:
        merge_worker_output(_kp(node.config), output[WORKER_OUTPUT_KEY])


def pytest_unconfigure(config: pytest.Config) -> None:
    from . import progress

    progress.reset()  # a later run in this process (pytester) decides anew
    kp = config.stash.get(_KP, None)
    if kp is None:
        return
    kp.close()  # the run's scratch folder: exports and whatever model code wrote
    from .distributed.process_group import shutdown

    shutdown()  # the torchrun process group, if the run created one


def _write_not_run(terminalreporter, config: pytest.Config) -> None:
    """Every check that did not run, required ones marked (they failed their test or the run)."""
    from .report.terminal import not_run_lines

    kp = config.stash.get(_KP, None) if _has_model(config) else None
    entries = config.stash[_LEDGER].not_run(kp)
    lines = not_run_lines([e.to_json() for e in entries], no_model=NO_MODEL)
    if lines:
        terminalreporter.write_sep("-", "kpmodel: checks that did not run")
        for line in lines:
            terminalreporter.write_line(line, red="REQUIRED" in line, yellow="REQUIRED" not in line)


def pytest_terminal_summary(terminalreporter, exitstatus, config: pytest.Config) -> None:
    if not _is_main(config):
        return
    kp = config.stash.get(_KP, None)
    if kp is None:
        _write_not_run(terminalreporter, config)
        return
    from .report.terminal import render

    lines = render(kp.checks)
    if lines:
        terminalreporter.write_sep("=", "kpmodel")
        for line in lines:
            terminalreporter.write_line(
                line,
                red=line.endswith("FAIL") or line.startswith("FAILED"),
                green=line.endswith("pass"),
            )
    _write_not_run(terminalreporter, config)
    for warning in kp.warnings:
        terminalreporter.write_line(f"kpmodel: warning: {warning}", yellow=True)
    if kp.settings.report is not None:
        terminalreporter.write_line(f"kpmodel: report written to {kp.settings.report}")


# -- fixtures ---------------------------------------------------------------------------------------
def _piece(request: pytest.FixtureRequest, name: str) -> Any:
    kp = _kp_with_model(request)
    return _or_fail(lambda: getattr(kp, name))


@pytest.fixture(scope="session")
def kp_session(request: pytest.FixtureRequest) -> KpSession:
    """The run itself (``pytest_kpmodel.session.KpSession``), for specs that go beyond fixtures."""
    return _kp_with_model(request)


@pytest.fixture(scope="session")
def kp_card(request: pytest.FixtureRequest):
    """The parsed, validated model card (``pytest_kpmodel.card.ModelCard``)."""
    return _piece(request, "card")


@pytest.fixture(scope="session")
def kp_scan(request: pytest.FixtureRequest):
    """Static scan of the weights (``pytest_kpmodel.security.ScanReport``); never loads them."""
    return _piece(request, "scan")


@pytest.fixture(scope="session")
def kp_model(request: pytest.FixtureRequest):
    """The model behind ``predict(list[Tensor]) -> list[Prediction]``, on ``--kp-device``."""
    return _piece(request, "model")


@pytest.fixture(scope="session")
def kp_dataset(request: pytest.FixtureRequest):
    """The evaluation set (``pytest_kpmodel.data.CocoKeypointDataset``)."""
    return _piece(request, "dataset")


@pytest.fixture(scope="session")
def kp_predictions(request: pytest.FixtureRequest):
    """Predictions on the evaluation set, computed once and cached on disk."""
    return _piece(request, "predictions")


@pytest.fixture(scope="session")
def kp_eval(request: pytest.FixtureRequest):
    """COCO box and keypoint metrics of ``kp_predictions`` (``metrics.KeypointMetrics``)."""
    return _piece(request, "eval")


@pytest.fixture(scope="session")
def kp_baseline_eval(request: pytest.FixtureRequest):
    """The same metrics for the baseline model (--kp-baseline or the card's provenance.base)."""
    kp = _kp_with_model(request)
    return _or_fail(lambda: kp.baseline.eval)


@pytest.fixture(scope="session")
def kp_flip_consistency(request: pytest.FixtureRequest):
    """Mean OKS between predictions on images and on their mirror images mapped back with the
    card's flip pairs (1.0: perfectly flip-equivariant), on a fixed sample of the set."""
    return _piece(request, "flip_consistency")


@pytest.fixture  # per test (the drop itself is computed once per run): its skip is the test's
def kp_precision_drop(request: pytest.FixtureRequest):
    """``kp_precision_drop("bf16")``: AP lost against fp32 (fp16 skips without a GPU)."""
    from .required import of_precision

    kp = _kp_with_model(request)

    def measure(precision: str):
        drop = _or_fail(lambda: kp.precision_drop(precision))
        failures = _note(request.node, of_precision(precision, drop.skipped))
        if failures:
            pytest.fail("kp_precision_drop: " + "\n".join(failures), pytrace=False)
        if drop.skipped:
            pytest.skip(drop.skipped)
        return drop

    return measure


@pytest.fixture
def kp_bench(request: pytest.FixtureRequest):
    """``kp_bench(batch_size=1, precision="fp32", image_size=(800, 1333), warmup=10,
    iters=100, num_images=8, stage_iters=None)`` -> latency percentiles, FPS, stage times and
    memory (``bench.BenchResult``). ``warmup`` calls per distinct timed shape, then ``iters``
    timed calls cycling through the first ``num_images`` images (no more than the timed calls
    reach); the stage times come from the timed calls (``stage_iters=None``) except for R-CNN
    models on CUDA, which get a separate pass of ``min(iters, 10)`` calls (``stage_iters=N``:
    a pass of N calls, 0: none); ``BenchSettings.forward_passes`` counts the calls.
    Settings come from ``@pytest.mark.kp_bench(...)`` and the call; the first measurement of a
    test is stored through pytest-benchmark (``--benchmark-json``, ``--benchmark-compare``)."""
    from .bench.precision import BenchUnavailable

    kp = _kp_with_model(request)
    marker = _bench_settings(request.node)
    # pytest-benchmark stores the first measurement this test really makes.
    unused = [lambda: request.getfixturevalue("benchmark")]

    def measure(**kwargs):
        from .required import of_precision

        benchmark = unused.pop() if unused else None
        settings = {**marker, **kwargs}
        precision = str(settings.get("precision", "fp32"))
        try:
            result = _or_fail(lambda: kp.bench(benchmark, **settings), skip_on=(BenchUnavailable,))
        except pytest.skip.Exception as exc:
            failures = _note(request.node, of_precision(precision, str(exc.msg)))
            if failures:
                pytest.fail("kp_bench: " + "\n".join(failures), pytrace=False)
            raise
        _note(request.node, of_precision(precision, None))
        return result

    return measure


@pytest.fixture(scope="session")
def kp_parity(request: pytest.FixtureRequest):
    """Deployment parity: fp32, bf16, fp16, ONNX Runtime and torch.export variants, speed and
    accuracy side by side (``parity.ParityTable``); variants that cannot run here are skipped
    rows with the reason. Timed with the ``kp_bench(...)`` settings of the tests using it."""
    return _piece(request, "parity")


@pytest.fixture(scope="session")
def kp_stability(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """``kp_stability(p)`` -> stability of predictions under perturbation ``p`` (mean OKS,
    recall of clean detections, per-image results) on a fixed sample of the evaluation set."""
    request.config.stash[_TMP] = tmp_path_factory  # where a failure is saved without a report
    kp = _kp_with_model(request)
    probe = _or_fail(lambda: kp.stability)
    # Card, data, model and clean predictions now, at setup: a broken card fails here with its
    # one line, not inside a @given test (a traceback and a @reproduce_failure hint).
    _or_fail(lambda: probe.sample)
    return probe


@pytest.fixture(scope="session")
def kp_corruption_eval(request: pytest.FixtureRequest):
    """Metrics under the corruption suite (``kp_corruptions(...)`` configures it); mPC, rPC."""
    return _piece(request, "corruption_eval")


@pytest.fixture(scope="session")
def kp_trigger_scan(request: pytest.FixtureRequest):
    """A hypothesis search for a patch trigger that makes people vanish or appear."""
    return _piece(request, "trigger_scan")


@pytest.fixture(scope="session")
def kp_diff(request: pytest.FixtureRequest):
    """What changed against the base model (``pytest_kpmodel.provenance.diff.ModelDiff``)."""
    return _piece(request, "diff")
