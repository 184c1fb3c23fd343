from __future__ import annotations

import json
import zipfile

import pytest
from packaging.version import Version
from policy_helpers import write_dist

from pytest_kpmodel.errors import KpModelError
from pytest_kpmodel.policy import kp_dependencies
from pytest_kpmodel.policy.osv import check_vulnerabilities, load_database, match, range_affects


def _pypi(name, ranges=(), versions=()):
    return {
        "package": {"ecosystem": "PyPI", "name": name, "purl": f"pkg:pypi/{name}"},
        "ranges": list(ranges),
        "versions": list(versions),
    }


def _eco(*events):
    return {"type": "ECOSYSTEM", "events": list(events)}


RECORDS = {
    # since the first release up to (not including) 1.2.0; named with the unnormalised spelling
    "PYSEC-2024-1": {"aliases": ["CVE-2024-0001"], "summary": "heap overflow in decode",
                     "affected": [_pypi("Fast_Codec", [_eco({"introduced": "0"},
                                                            {"fixed": "1.2.0"})])]},
    # 2.0 up to and including 2.3 (no fix yet), and a second range 3.0 <= v < 3.1
    "GHSA-aaaa-bbbb-cccc": {"aliases": ["CVE-2024-0002"], "summary": "path traversal",
                            "affected": [_pypi("fast-codec", [
                                _eco({"introduced": "2.0"}, {"last_affected": "2.3"}),
                                _eco({"introduced": "3.0"}, {"fixed": "3.1"})])]},
    # two intervals in one events list: [1.0, 1.1) and [1.5, 1.6)
    "PYSEC-2024-3": {"summary": "two windows",
                     "affected": [_pypi("fast.codec", [_eco({"introduced": "1.5"},
                                                            {"fixed": "1.6"},
                                                            {"introduced": "1.0"},
                                                            {"fixed": "1.1"})])]},
    # explicit versions only
    "PYSEC-2024-4": {"summary": "bad release",
                     "affected": [_pypi("fast-codec", versions=["4.0", "4.0.1"])]},
    # withdrawn: ignored whatever it says
    "PYSEC-2024-5": {"withdrawn": "2024-05-01T00:00:00Z", "summary": "false alarm",
                     "affected": [_pypi("fast-codec", [_eco({"introduced": "0"})])]},
    # other ecosystems and GIT ranges never match a PyPI install
    "GHSA-npm0-0000-0000": {"summary": "npm package of the same name",
                            "affected": [{"package": {"ecosystem": "npm", "name": "fast-codec"},
                                          "ranges": [_eco({"introduced": "0"})]}]},
    "OSV-2024-7": {"summary": "git only",
                   "affected": [_pypi("fast-codec", [{"type": "GIT", "repo": "https://x",
                                                       "events": [{"introduced": "0"}]}])]},
}  # fmt: skip


def _write_folder(path):
    (path / "sub").mkdir(parents=True)
    for i, (id_, body) in enumerate(RECORDS.items()):
        folder = path / "sub" if i % 2 else path
        (folder / f"{id_}.json").write_text(json.dumps({"id": id_, **body}))
    return path


def _write_zip(path):
    with zipfile.ZipFile(path, "w") as zf:
        for id_, body in RECORDS.items():
            zf.writestr(f"{id_}.json", json.dumps({"id": id_, **body}))
    return path


@pytest.fixture(params=["folder", "zip"])
def db(request, tmp_path):
    if request.param == "zip":
        return _write_zip(tmp_path / "all.zip")
    return _write_folder(tmp_path / "osv")


@pytest.mark.parametrize(
    "version, expected",
    [
        ("0.1", {"PYSEC-2024-1"}),  # "0" introduced: from the very first release
        ("1.0", {"PYSEC-2024-1", "PYSEC-2024-3"}),  # introduced is inclusive
        ("1.0.5", {"PYSEC-2024-1", "PYSEC-2024-3"}),
        ("1.1", {"PYSEC-2024-1"}),  # fixed is exclusive
        ("1.2.0", set()),
        ("1.2.0rc1", {"PYSEC-2024-1"}),  # a pre-release of the fix is still before it
        ("1.5", {"PYSEC-2024-3"}),
        ("1.6", set()),
        ("2.0", {"GHSA-aaaa-bbbb-cccc"}),
        ("2.3", {"GHSA-aaaa-bbbb-cccc"}),  # last_affected is inclusive
        ("2.3.post1", set()),
        ("2.4", set()),
        ("3.0.9", {"GHSA-aaaa-bbbb-cccc"}),  # the second range
        ("3.1", set()),
        ("4.0", {"PYSEC-2024-4"}),  # explicit versions list
        ("4.0.0", {"PYSEC-2024-4"}),  # compared as versions, not strings
        ("4.0.2", set()),
    ],
)
def test_version_boundaries(db, version, expected):
    matches, _ = match(load_database(db), {"fast-codec": version})
    assert {m.advisory.id for m in matches} == expected


def test_range_semantics_directly():
    v = Version
    assert range_affects(v("1.0"), [{"introduced": "1.0"}])
    assert not range_affects(v("0.9"), [{"introduced": "1.0"}])
    assert range_affects(v("9.9"), [{"introduced": "0"}])
    assert not range_affects(v("2.0"), [{"introduced": "1.0"}, {"fixed": "2.0"}])
    assert range_affects(v("2.0"), [{"introduced": "1.0"}, {"last_affected": "2.0"}])
    assert not range_affects(v("1.0"), [{"introduced": "1.0"}, {"fixed": "1.0"}])


def test_database_loading(db):
    loaded = load_database(db)
    assert loaded.withdrawn == 1
    ids = {a.id for a in loaded.advisories("FAST_codec")}  # PEP 503 lookups
    assert ids == {"PYSEC-2024-1", "GHSA-aaaa-bbbb-cccc", "PYSEC-2024-3", "PYSEC-2024-4",
                   "OSV-2024-7"}  # fmt: skip
    only = load_database(db, packages=["unrelated"])  # the pre-filter skips everything
    assert only.by_package == {}


def test_findings_name_ids_aliases_and_fixes(db):
    findings = check_vulnerabilities(db, {"fast-codec": "1.0.5", "other": "1.0"})
    by_id = {f.details["id"]: f for f in findings}
    assert set(by_id) == {"PYSEC-2024-1", "PYSEC-2024-3"}
    f = by_id["PYSEC-2024-1"]
    assert f.severity == "fail" and f.check == "dependencies.vulnerabilities"
    assert f.message == (
        "fast-codec 1.0.5 is affected by PYSEC-2024-1 (CVE-2024-0001): heap overflow in decode; "
        "fixed in 1.2.0"
    )
    assert f.details["aliases"] == ["CVE-2024-0001"] and f.details["fixed"] == ["1.2.0"]
    last = check_vulnerabilities(db, {"fast-codec": "2.1"})[0]
    assert last.message.endswith("no fixed version known")


def test_ignore_by_alias(db):
    findings = check_vulnerabilities(db, {"fast-codec": "1.1"}, ignore=["cve-2024-0001"])
    [f] = findings
    assert f.severity == "info" and f.details["ignored"] and f.message.endswith("(ignored)")


def test_kp_dependencies_with_fake_site(db, site):
    write_dist(site, "Fast.Codec", "2.2")
    write_dist(site, "safe-lib", "1.0")
    result = kp_dependencies(osv_db=db, paths=[str(site)])
    assert [s.status for s in result.subchecks] == ["failed"]
    [f] = result.findings
    assert f.details["id"] == "GHSA-aaaa-bbbb-cccc" and f.details["package"] == "fast-codec"
    clean = kp_dependencies(osv_db=db, paths=[str(site)], osv_ignore=["GHSA-aaaa-bbbb-cccc"])
    assert clean.passed


def test_without_database_the_check_is_skipped(site):
    result = kp_dependencies(paths=[str(site)])
    assert result.skipped and "--kp-osv-db" in result.skipped
    assert not result.passed


def test_non_pep440_installed_version_still_matches_explicit_versions(tmp_path):
    (tmp_path / "r.json").write_text(json.dumps({
        "id": "PYSEC-0", "summary": "legacy",
        "affected": [_pypi("oldpkg", [_eco({"introduced": "0"}, {"fixed": "2.0"})],
                           versions=["1.0-custom-build"])]}))  # fmt: skip
    findings = check_vulnerabilities(tmp_path, {"oldpkg": "1.0-custom-build"})
    assert [f.details.get("id") for f in findings if f.severity == "fail"] == ["PYSEC-0"]
    notes = check_vulnerabilities(tmp_path, {"oldpkg": "weird-build"})
    assert [f.severity for f in notes] == ["warn"]
    assert "not PEP 440" in notes[0].message


def test_unreadable_files_are_reported(tmp_path):
    (tmp_path / "broken.json").write_text('{"affected": [{"package": {"name": "x", ')  # cut
    (tmp_path / "ok.json").write_text(json.dumps({"id": "X-1", "affected": []}))
    [f] = check_vulnerabilities(tmp_path, {"x": "1.0"})
    assert f.severity == "warn" and "not OSV records" in f.message


def test_empty_database_is_a_failure_not_a_pass(tmp_path):
    [f] = check_vulnerabilities(tmp_path, {"x": "1.0"})
    assert f.severity == "fail" and "holds no OSV JSON records" in f.message


def test_missing_database_is_a_clear_error(tmp_path):
    with pytest.raises(KpModelError, match="--kp-osv-db: .* does not exist"):
        load_database(tmp_path / "nope.zip")
    (tmp_path / "db.txt").write_text("x")
    with pytest.raises(KpModelError, match="neither a zip"):
        load_database(tmp_path / "db.txt")
