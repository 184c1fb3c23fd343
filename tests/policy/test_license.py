from __future__ import annotations

import pytest
from policy_helpers import write_dist, write_policy_card

from pytest_kpmodel.card import load_card
from pytest_kpmodel.errors import KpModelError
from pytest_kpmodel.policy import kp_license
from pytest_kpmodel.policy.spdx import (
    COMMERCIAL,
    NONCOMMERCIAL,
    PERMISSIVE,
    RESTRICTED,
    STRONG,
    UNKNOWN,
    WEAK,
    LicensePolicy,
    check_expression,
    parse,
    render,
    terms,
)

# Policies (columns of the matrix):
POLICIES = {
    "D": {},  # the defaults: permissive only (copyleft=False: no copyleft, weak or strong)
    "W": {"weak_copyleft": True},  # weak copyleft allowed deliberately
    "C": {"copyleft": True},  # any copyleft
    "S": {"copyleft": "none"},  # no copyleft at all (the same as the default)
    "N": {"copyleft": True, "deny": ["AGPL-*", "SSPL-1.0"]},  # copyleft, but no network clauses
    "R": {"noncommercial": True, "restricted": True},  # research use
    "A": {"allow": ["LicenseRef-acme-*"]},  # we signed ACME's contract
}
# expression -> verdict per policy in the order D W C S N R A ("y" acceptable, "n" not)
MATRIX = {
    "MIT": "yyyyyyy",
    "mit": "yyyyyyy",
    "Apache-2.0 OR GPL-3.0-only": "yyyyyyy",
    "GPL-3.0-only": "nnynynn",
    "GPL-2.0+": "nnynynn",  # deprecated id, normalised to GPL-2.0-or-later
    "GPL-3.0": "nnynynn",  # deprecated id without -only
    # a linking exception frees code that links with the work, not the work: weak copyleft
    "GPL-2.0-only WITH Classpath-exception-2.0": "nyynynn",
    "GPL-2.0-or-later WITH Classpath-exception-2.0": "nyynynn",
    "GPL-3.0-only WITH GCC-exception-3.1": "nyynynn",
    "MIT AND GPL-3.0-only": "nnynynn",
    "(MIT OR Apache-2.0) AND LGPL-2.1-only": "nyynynn",
    "lgpl-2.1+ or mit": "yyyyyyy",  # lowercase ids and operator
    "LGPL-3.0-only": "nyynynn",
    "AGPL-3.0-or-later": "nnynnnn",
    "MIT OR AGPL-3.0-only": "yyyyyyy",
    "SSPL-1.0": "nnynnnn",
    "EUPL-1.2": "nnynynn",
    "MPL-2.0": "nyynynn",
    "EPL-2.0": "nyynynn",
    "CC-BY-SA-4.0": "nnynynn",
    "CC-BY-4.0": "yyyyyyy",
    "CC0-1.0": "yyyyyyy",
    "CC-BY-NC-4.0": "nnnnnyn",
    "CC-BY-NC-SA-4.0": "nnnnnyn",
    "openrail": "nnnnnyn",  # OpenRAIL-style use restrictions
    "BUSL-1.1": "nnnnnyn",
    "LicenseRef-acme-commercial": "nnnnnny",
    "BSD-3-Clause AND LicenseRef-acme-eula": "nnnnnny",
    "Unlicense OR LicenseRef-other-terms": "yyyyyyy",
    "LicenseRef-other-terms": "nnnnnnn",  # not the ACME one
    "Apache-2.0 WITH LLVM-exception": "yyyyyyy",
    "Foo-1.0": "nnnnnnn",  # parseable but unknown: never guessed
    "MIT AND": "nnnnnnn",  # garbage from here on
    "MIT/Apache-2.0": "nnnnnnn",
    "((MIT": "nnnnnnn",
    "Apache-2.0 WITH MIT": "nnnnnnn",  # a license is not an exception
    "MIT OR OR BSD-2-Clause": "nnnnnnn",
}


@pytest.mark.parametrize("expression", list(MATRIX))
def test_license_matrix(expression):
    for column, expected in zip(POLICIES, MATRIX[expression], strict=True):
        policy = LicensePolicy.build(**POLICIES[column])
        verdict, _ = check_expression(expression, policy)
        assert verdict.ok == (expected == "y"), (expression, column, verdict.reasons)
        if not verdict.ok:
            assert verdict.reasons  # every refusal says why


@pytest.mark.parametrize(
    "expression, cls",
    [
        ("MIT", PERMISSIVE),
        ("BSD-2-Clause", PERMISSIVE),
        ("Apache-2.0", PERMISSIVE),
        ("LGPL-3.0-or-later", WEAK),
        ("EPL-2.0", WEAK),
        ("GPL-2.0-only", STRONG),
        ("AGPL-3.0-only", STRONG),
        ("CC-BY-NC-ND-4.0", NONCOMMERCIAL),
        ("PolyForm-Noncommercial-1.0.0", NONCOMMERCIAL),
        ("CC-BY-ND-4.0", RESTRICTED),
        ("creativeml-openrail-m", RESTRICTED),
        ("llama3.1", RESTRICTED),
        ("LicenseRef-vendor", COMMERCIAL),
        ("Not-A-License-9", UNKNOWN),
    ],
)
def test_classes(expression, cls):
    [term] = terms(parse(expression))
    assert term.cls == cls


def test_linking_exception_fails_copyleft_false_and_says_why():
    """Issue 17: GPL-2.0-only WITH Classpath-exception-2.0 passed kp_license(copyleft=False)."""
    expr = "GPL-2.0-only WITH Classpath-exception-2.0"
    verdict, _ = check_expression(expr, LicensePolicy.build(copyleft=False))
    [reason] = verdict.reasons
    assert not verdict.ok and "is weak copyleft" in reason and "weak_copyleft=True" in reason
    assert "the work stays copyleft" in reason
    assert check_expression(expr, LicensePolicy.build(weak_copyleft=True))[0].ok
    assert not kp_license(None, spdx=expr).passed
    assert kp_license(None, spdx=expr, weak_copyleft=True).passed
    assert not kp_license(None, spdx="AGPL-3.0-only", weak_copyleft=True).passed


def test_network_copyleft_is_marked():
    assert terms(parse("AGPL-3.0-only"))[0].network
    assert not terms(parse("GPL-3.0-only"))[0].network


def test_with_exception_is_kept_and_deprecated_ids_normalised():
    tree = parse("gpl-2.0+ WITH classpath-exception-2.0 OR mit")
    assert render(tree) == "GPL-2.0-or-later WITH Classpath-exception-2.0 OR MIT"


def test_syntax_error_reports_the_parser_reason():
    verdict, tree = check_expression("MIT AND", LicensePolicy())
    assert tree is None and not verdict.ok
    assert "not a valid SPDX expression" in verdict.reasons[0]
    assert "AND requires two or more licenses" in verdict.reasons[0]


def test_or_failure_lists_every_choice():
    verdict, _ = check_expression("GPL-3.0-only OR CC-BY-NC-4.0", LicensePolicy())
    [reason] = verdict.reasons
    assert "none of the choices" in reason
    assert "GPL-3.0-only is strong copyleft" in reason and "copyleft=True" in reason
    assert "CC-BY-NC-4.0 is non-commercial" in reason and "noncommercial=True" in reason


def test_and_failure_gives_one_reason_per_failing_part():
    verdict, _ = check_expression("GPL-3.0-only AND MIT AND LicenseRef-x", LicensePolicy())
    assert len(verdict.reasons) == 2


def test_deny_wins_over_allow_and_flags():
    policy = LicensePolicy.build(allow=["MIT"], deny=["mit"], copyleft=True)
    assert not check_expression("MIT", policy)[0].ok
    assert "denied" in check_expression("MIT", policy)[0].reasons[0]


def test_allow_overrides_class_and_covers_exceptions():
    policy = LicensePolicy.build(allow=["GPL-2.0-only"])
    assert check_expression("GPL-2.0-only WITH Font-exception-2.0", policy)[0].ok
    assert check_expression("GPL-2.0", policy)[0].ok  # deprecated spelling of the same id
    assert not check_expression("GPL-3.0-only", policy)[0].ok


def test_deny_entries_are_normalised():
    policy = LicensePolicy.build(deny=["GPL-2.0+"], copyleft=True)
    assert policy.deny == ("GPL-2.0-or-later",)
    assert not check_expression("GPL-2.0-or-later", policy)[0].ok
    assert check_expression("GPL-2.0-only", policy)[0].ok


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"deny": ["GLP-3.0"]}, "not a known SPDX license id"),
        ({"allow": ["MIT OR BSD-2-Clause"]}, "one license id"),
        ({"allow": ["MIT AND"]}, "AND requires"),
        ({"copyleft": "weak"}, "copyleft='weak'"),
        ({"commercial": "yes"}, "commercial='yes'"),
        ({"weak_copyleft": 1}, "weak_copyleft=1"),
        ({"weak_copyleft": True, "copyleft": "none"}, "contradicts"),
    ],
)
def test_bad_policy_arguments_are_clear_errors(kwargs, message):
    with pytest.raises(KpModelError, match=message):
        LicensePolicy.build(**kwargs)


def test_bare_string_allow_is_one_entry():
    assert LicensePolicy.build(allow="LicenseRef-acme-*").allow == ("LicenseRef-acme-*",)


# -- kp_license on a card ------------------------------------------------------------------------------
def test_card_license_accepted(tmp_path):
    card = load_card(write_policy_card(tmp_path, '[license]\nspdx = "Apache-2.0 OR GPL-2.0+"'))
    result = kp_license(card)
    assert result.passed and result.skipped is None
    messages = [f.message for f in result.findings]
    assert any("accepted: Apache-2.0 (permissive)" in m for m in messages)
    assert any("normalised to 'Apache-2.0 OR GPL-2.0-or-later'" in m for m in messages)
    assert [(s.name, s.status) for s in result.subchecks] == [("license", "passed")]
    assert result.to_json()["subchecks"] == [{"name": "license", "status": "passed", "reason": ""}]


def test_card_license_refused(tmp_path):
    card = load_card(write_policy_card(tmp_path, '[license]\nspdx = "AGPL-3.0-only"'))
    result = kp_license(card)
    assert not result.passed
    [failure] = result.failures
    assert "AGPL-3.0-only is strong copyleft (network clause)" in failure
    assert result.findings[-1].check == "license"
    assert kp_license(card, copyleft=True).passed


def test_card_without_license_is_a_finding(tmp_path):
    card = load_card(write_policy_card(tmp_path))
    result = kp_license(card, unknown=True, commercial=True, copyleft=True)
    assert not result.passed
    assert "states no license" in result.failures[0]


def test_unparseable_card_license_fails_with_reason(tmp_path):
    card = load_card(write_policy_card(tmp_path, '[license]\nspdx = "MIT,, Apache"'))
    [failure] = kp_license(card).failures
    assert "not a valid SPDX expression" in failure and "Invalid license key" in failure


def test_bad_licenses_argument():
    with pytest.raises(KpModelError, match="licenses='everything'"):
        kp_license(None, spdx="MIT", licenses="everything")


# -- licenses of the packages the model needs ----------------------------------------------------------
def _fake_stack(site):
    write_dist(site, "alpha", "1.0", license_expression="MIT",
               requires=("beta>=1", "delta", "gamma; sys_platform == 'nonexistent-os'",
                         "epsilon; extra == 'extras'"))  # fmt: skip
    write_dist(site, "beta", "1.2", license="BSD")  # free text, read as BSD (permissive)
    write_dist(site, "gamma", "1.0", license_expression="GPL-3.0-only")  # marker false: unused
    write_dist(site, "delta", "2.0",
               classifiers=("License :: OSI Approved :: GNU General Public License v3 (GPLv3)",),
               requires=("zeta",))  # fmt: skip
    write_dist(site, "epsilon", "0.1")  # no license metadata at all; only via the extra
    write_dist(site, "zeta", "3.0", license="LicenseRef-Zeta-EULA")
    write_dist(site, "unrelated", "1.0", license_expression="AGPL-3.0-only")


def _packages(result, severity="fail"):
    return sorted(
        f.details["package"]
        for f in result.findings
        if f.check == "license.dependencies" and f.severity == severity
    )


def test_dependency_licenses(site):
    _fake_stack(site)
    result = kp_license(None, spdx="MIT", licenses="dependencies", requires=["alpha"],
                        paths=[str(site)])  # fmt: skip
    assert _packages(result) == ["delta", "zeta"]  # GPL via classifier; LicenseRef
    assert {s.name: s.status for s in result.subchecks} == {
        "license": "passed",
        "license.dependencies": "failed",
    }
    accepting = kp_license(None, spdx="MIT", licenses="dependencies", requires=["alpha"],
                           paths=[str(site)], copyleft=True, allow=["LicenseRef-Zeta-*"])  # fmt: skip
    assert accepting.passed


def test_unclassifiable_dependency_is_reported_not_guessed(site):
    _fake_stack(site)
    result = kp_license(None, spdx="MIT", licenses="dependencies", requires=["alpha[extras]"],
                        paths=[str(site)], copyleft=True, commercial=True)  # fmt: skip
    [finding] = [f for f in result.findings if f.details.get("package") == "epsilon"]
    assert finding.severity == "fail" and "cannot be classified" in finding.message
    lenient = kp_license(None, spdx="MIT", licenses="dependencies", requires=["alpha[extras]"],
                         paths=[str(site)], copyleft=True, commercial=True, unknown=True)  # fmt: skip
    assert lenient.passed
    assert _packages(lenient, "warn") == ["epsilon"]


def test_dependency_license_sources(site):
    from pytest_kpmodel.policy.dist_license import distribution_license
    from pytest_kpmodel.policy.distributions import installed_distributions

    write_dist(site, "a", "1", license_expression="Apache-2.0 OR MIT", license="GPL")
    write_dist(site, "b", "1", license="BSD 3-Clause License\n\nCopyright (c) someone\n...")
    write_dist(site, "c", "1", license="Copyright 2020, all rights reserved",
               classifiers=("License :: OSI Approved :: MIT License",
                            "License :: OSI Approved :: Apache Software License"))  # fmt: skip
    write_dist(site, "d", "1", license="Apache-2.0 AND BSD-2-Clause")
    write_dist(site, "e", "1", license_expression="MIT OR", license="MIT")
    dists = installed_distributions([str(site)])
    read = {n: distribution_license(d) for n, d in dists.items()}
    assert (read["a"].source, render(read["a"].tree)) == ("License-Expression", "Apache-2.0 OR MIT")
    assert (read["b"].source, render(read["b"].tree)) == ("License", "BSD-3-Clause")
    assert read["c"].source == "classifiers"
    assert render(read["c"].tree) == "MIT AND Apache (unversioned)"  # conservative: AND
    assert (read["d"].source, render(read["d"].tree)) == ("License", "Apache-2.0 AND BSD-2-Clause")
    assert read["e"].source == "License" and "invalid" in read["e"].notes[0]


def test_dependency_check_without_requirements_is_skipped_not_passed():
    result = kp_license(None, spdx="MIT", licenses="dependencies", requires=[])
    assert result.skipped is None  # the model's own license was checked
    assert "no requirements are known" in result.skipped_subchecks["license.dependencies"]
    assert "license passed, license.dependencies skipped" in result.summary()


def test_missing_required_package_is_a_warning(site):
    result = kp_license(None, spdx="MIT", licenses="dependencies", requires=["ghost"],
                        paths=[str(site)])  # fmt: skip
    assert result.passed
    assert _packages(result, "warn") == ["ghost"]
