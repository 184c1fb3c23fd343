"""Labels: every finding code the scanner emits has one; the worst label is the file's."""

from __future__ import annotations

from pathlib import Path

from sec_corpus import CORPUS
from sec_folders import make_model_folder
from sec_payloads import PICKLE_SAMPLES

from pytest_kpmodel.security import scan_path
from pytest_kpmodel.security.report import LABELS, VERDICTS, Collector, ScanLimits, label, worst
from pytest_kpmodel.security.scan import scan_folder


def test_every_emitted_code_has_a_label(tmp_path: Path, no_unpickle) -> None:
    reports = []
    for i, case in enumerate(CORPUS):
        folder = tmp_path / f"c{i}"
        folder.mkdir()
        p = folder / case.filename
        p.write_bytes(case.build(folder, str(tmp_path / "canary")))
        reports.append(scan_path(p))
    for s in PICKLE_SAMPLES:
        p = tmp_path / f"s-{s.name}"
        p.write_bytes(s.build(str(tmp_path / "canary")))
        reports.append(scan_path(p))
    reports += scan_folder(make_model_folder(tmp_path / "folder"))
    codes = {f.details["code"] for r in reports for f in r.failures}
    unlabelled = {c for c in codes if c not in LABELS and not c.startswith("limit-")}
    assert not unlabelled
    for r in reports:
        assert r.verdict == worst(f.details["verdict"] for f in r.failures)
        for f in r.failures:
            assert f.details["verdict"] in VERDICTS


def test_label_order_and_defaults() -> None:
    assert VERDICTS == ("unsafe", "unverifiable", "unsupported")
    assert worst(["unsupported", "unverifiable"]) == "unverifiable"
    assert worst(["unsupported", "unsafe"]) == "unsafe"
    assert worst([]) == "clean"
    assert label("limit-max-ops") == "unverifiable"
    assert label("a-code-nobody-labelled") == "unsafe"  # fail closed, worst label


def test_omitted_findings_keep_the_worst_label() -> None:
    col = Collector("f", ScanLimits(max_findings=1))
    col.add("security.pickle", "opcode", "a", name="1")
    col.add("security.pickle", "disallowed-global", "b", name="2")
    *_, omitted = col.finish()
    assert omitted.details["code"] == "findings-omitted"
    assert omitted.details["verdict"] == "unsafe"
    col = Collector("f", ScanLimits(max_findings=1))
    for i in range(3):
        col.add("security.format", "inert", "x", severity="info", name=str(i))
    assert all(f.severity == "info" for f in col.finish())  # only infos left out: still clean
