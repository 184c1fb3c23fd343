"""pytest hooks and fixtures for pytest-kpmodel, and what reads pytest's options and markers
for them: each hook and fixture delegates to the run (``session.KpSession``) or a package.

Importing this module must not import torch: ``pytest --help`` in a project that has the plugin
installed but does not use it pays nothing for it.

Names: ``session`` is always pytest's ``Session``; the run (a ``KpSession``) is ``kp``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pytest

from .checks import MARKERS_DOC
from .errors import KpModelError
from .options import OPTIONS, Opt, check_ini_keys, convert

if TYPE_CHECKING:
    from .marker_args import MarkerUse
    from .required import Ledger, Outcome
    from .session import KpSession
    from .settings import Settings

T = TypeVar("T")

NO_MODEL = "no model: pass --kp-model"
KP_FIXTURES = frozenset({
    "kp_card", "kp_scan", "kp_model", "kp_dataset", "kp_predictions", "kp_eval",
    "kp_baseline_eval", "kp_bench", "kp_diff", "kp_stability", "kp_corruption_eval",
    "kp_trigger_scan", "kp_parity", "kp_precision_drop", "kp_flip_consistency", "kp_session",
})  # fmt: skip


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


def _read_option(config: pytest.Config, opt: Opt) -> Any:
    """Command line first, then the ini key; ini paths are relative to the ini file."""
    value = config.getoption(opt.dest)
    from_ini = value is None
    if from_ini:
        value = config.getini(opt.dest)
        if value in (None, "", []):
            return opt.default
    ini_dir = from_ini and config.inipath
    base = Path(config.inipath).parent if ini_dir else Path(config.invocation_params.dir)
    with _usage_error():
        return convert(opt, value, from_ini=from_ini, base=base)


def _settings(config: pytest.Config) -> Settings:
    from .settings import Settings

    present = getattr(config, "_inicfg", None) or {}  # pytest has no public list of the keys
    with _usage_error():
        check_ini_keys(present, config.inipath.name if config.inipath else "ini file")
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
    """A bad option, ini key or marker stops the run with its message."""
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
    return [(i.nodeid, m.args, dict(m.kwargs)) for i in items for m in i.iter_markers(marker)]


# -- hooks ------------------------------------------------------------------------------------------
def pytest_configure(config: pytest.Config) -> None:
    """Marker docs and the options, read (and refused when bad) now; nothing else: a run that
    selects no kp test pays for nothing more (``_kp`` builds the run on first use; hypothesis'
    entry point registers the profile, and loads it in a kp run, as hypothesis is imported)."""
    _configure_progress(config)
    for doc in MARKERS_DOC.values():
        config.addinivalue_line("markers", doc)
    config.stash[_SETTINGS] = _settings(config)
    if _has_model(config):
        _load_hypothesis_profile(config, None)  # before collection imports a spec's @settings
    from .required import Ledger

    ledger = config.stash[_LEDGER] = Ledger(required=config.stash[_SETTINGS].require)
    config.pluginmanager.register(_LedgerPlugin(ledger), "kpmodel-ledger")


def _load_hypothesis_profile(config: pytest.Config, items: list[pytest.Item] | None) -> None:
    """The ``kpmodel`` profile unless the user picked one: on import (no items), or for fixtures."""
    if not config.getoption("hypothesis_profile", None):
        from .hypothesis_profile import load_if_used, load_on_import

        load_on_import() if items is None else load_if_used([_fixtures(i) for i in items])


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
            report.sections.append(("kpmodel", probe.failure_note(folder, item.nodeid)))
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
    warning = write_summary(settings.summary, kp, [e.to_json() for e in ledger.not_run(kp)], tr)
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


def pytest_terminal_summary(terminalreporter, exitstatus, config: pytest.Config) -> None:
    """The gate table, the failed checks' findings, every check that did not run (required
    ones marked), the run's warnings."""
    if not _is_main(config):
        return
    from .report.terminal import summary_lines

    kp = config.stash.get(_KP, None) if _has_model(config) else None
    not_run = [e.to_json() for e in config.stash[_LEDGER].not_run(kp)]
    for text, style in summary_lines(kp, not_run, no_model=NO_MODEL):
        if style in ("=", "-"):
            terminalreporter.write_sep(style, text)
        else:
            terminalreporter.write_line(text, **({style: True} if style else {}))


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
    """``kp_precision_drop("bf16", run_emulated_bf16=False)``: AP lost against fp32 (fp16 skips
    without a GPU; bf16 on a CPU that emulates it when projected over 10 min, unless asked)."""
    from .required import of_precision

    kp = _kp_with_model(request)

    def measure(precision: str, run_emulated_bf16: bool = False):
        drop = _or_fail(lambda: kp.precision_drop(precision, run_emulated_bf16))
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
