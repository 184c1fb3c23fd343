"""``kp_license``: may we use this model? Its SPDX license, and optionally its dependencies'.

``kp_license(card, ...)`` judges the card's ``[license] spdx`` (or ``spdx=``) against the
adopter's ``LicensePolicy`` (see :mod:`.spdx` for the license classes and what each flag
admits); with ``licenses="dependencies"`` it also judges the installed distributions the model
needs (read as :mod:`.dist_license` reads their metadata). It returns a ``PolicyResult`` whose
sub-checks are ``license`` and ``license.dependencies`` (finding ``check`` names alike).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from packaging.utils import canonicalize_name

from ..errors import KpModelError
from ..findings import Finding
from .dist_license import distribution_license
from .distributions import installed_distributions, parse_requirement, requirement_closure
from .result import Assembler, PolicyResult, SkipCheck
from .spdx import UNKNOWN, LicensePolicy, check_expression, evaluate, normalized, render

if TYPE_CHECKING:
    from ..card import ModelCard


def kp_license(
    card: ModelCard | None,
    *,
    allow: Sequence[str] | str = (),
    deny: Sequence[str] | str = (),
    copyleft: bool | str = False,
    commercial: bool = False,
    unknown: bool = False,
    noncommercial: bool = False,
    restricted: bool = False,
    weak_copyleft: bool = False,
    licenses: str = "model",
    requires: Sequence[str] | None = None,
    paths: Sequence[str] | None = None,
    spdx: str | None = None,
) -> PolicyResult:
    """Judge the model's license (``card.license.spdx``, or ``spdx``) against an adoption policy.

    What the flags mean for an adopter who ships the model inside a product:

    - permissive licenses (MIT, BSD, Apache-2.0, CC0, CC-BY...) are always acceptable;
    - ``copyleft=False`` (default): no copyleft - neither strong and network copyleft (GPL,
      AGPL, SSPL, EUPL, CC-BY-SA: the combined work, or a service using it, must be released) nor
      weak copyleft (LGPL, MPL, EPL: changes to the licensed files or library must be shared;
      also GPL with a linking exception such as Classpath, which frees the code that links with
      the work but not the work itself); ``weak_copyleft=True`` accepts weak copyleft
      deliberately, ``copyleft=True`` accepts both (``copyleft="none"`` is the same as False);
    - ``commercial=False`` (default): commercial or custom terms (any ``LicenseRef-*``, proprietary
      licenses) are refused unless the id is listed in ``allow`` — custom terms need a lawyer and
      usually a contract; ``commercial=True`` means the adopter has one;
    - ``noncommercial=False`` (default): non-commercial licenses (CC-BY-NC-*, PolyForm
      Noncommercial...) are refused, because the adopter's use is assumed commercial; set
      ``noncommercial=True`` for research or internal evaluation;
    - ``restricted=False`` (default): licenses with use-based restrictions or no-derivatives terms
      (the OpenRAIL family, Llama licenses, BUSL, Elastic, CC-BY-ND, Hippocratic, JSON) are
      refused; ``restricted=True`` accepts them after review;
    - ``unknown=False`` (default): ids this plugin cannot classify are refused; ``unknown=True``
      accepts them (and turns unclassifiable dependency licenses into warnings);
    - ``allow``/``deny``: ids or globs; ``deny`` always wins, ``allow`` accepts an id whatever its
      class. ``A OR B`` passes when either choice does, ``A AND B`` needs both.

    ``licenses="dependencies"`` also checks the installed distributions the model needs —
    ``requires`` (default: the card's ``[dependencies] requires``) and everything they pull in —
    read from their metadata (License-Expression, then License, then classifiers); a package
    whose license cannot be classified is reported, not guessed. ``paths`` replaces ``sys.path``
    for finding distributions. A card without a license is a failing finding.
    """
    if licenses not in ("model", "dependencies"):
        raise KpModelError(f"kp_license: licenses={licenses!r}; use 'model' or 'dependencies'")
    policy = LicensePolicy.build(
        allow, deny, copyleft, commercial, noncommercial, restricted, unknown, weak_copyleft
    )
    asm = Assembler("kp_license", "")
    expression = spdx if spdx is not None else (card.license.spdx if card is not None else None)
    where = f"{card.path} [license] spdx" if card is not None and spdx is None else "spdx"
    asm.run("license", lambda: _model_license(expression, where, policy))
    if licenses == "dependencies":
        roots = list(requires) if requires is not None else (
            list(card.dependencies.requires) if card is not None else []
        )  # fmt: skip
        asm.run("license.dependencies", lambda: _dependency_licenses(roots, policy, paths))
    return asm.done("nothing to check")


def _model_license(expression: str | None, where: str, policy: LicensePolicy) -> list[Finding]:
    if not expression or not expression.strip():
        return [
            Finding(
                "license",
                f"the model states no license ({where} is missing): without one there is no "
                "permission to use it",
                details={"expression": None},
            )
        ]
    verdict, tree = check_expression(expression, policy)
    details: dict[str, Any] = {"expression": expression}
    findings: list[Finding] = []
    if tree is not None:
        details["normalized"] = render(tree)
        norm = normalized(expression)
        if norm and " ".join(norm.split()).lower() != " ".join(expression.split()).lower():
            findings.append(
                Finding(
                    "license",
                    f"license {expression!r} normalised to {norm!r} (deprecated or misspelt ids)",
                    "info",
                    details,
                )
            )
    if verdict.ok:
        chosen = ", ".join(f"{t.text} ({t.cls})" for t in verdict.accepted)
        findings.append(
            Finding(
                "license",
                f"license {expression!r} accepted: {chosen}",
                "info",
                {**details, "accepted": [t.text for t in verdict.accepted], "notes": verdict.notes},
            )
        )
        return findings
    for reason in verdict.reasons:
        findings.append(Finding("license", f"license {expression!r}: {reason}", "fail", details))
    return findings


def _dependency_licenses(
    roots: Sequence[str], policy: LicensePolicy, paths: Sequence[str] | None
) -> list[Finding]:
    if not roots:
        raise SkipCheck(
            "no requirements are known (the card's [dependencies] requires is empty and none "
            "were given), so there are no packages whose licenses to check"
        )
    reqs = [parse_requirement(r, "kp_license requires") for r in roots]
    dists = installed_distributions(paths)
    closure = requirement_closure(reqs, dists)
    findings = []
    for req in reqs:
        if canonicalize_name(req.name) not in dists:
            findings.append(
                Finding(
                    "license.dependencies",
                    f"{req.name} is required but not installed: its license was not checked",
                    "warn",
                    {"package": req.name},
                )
            )
    for name, dist in sorted(closure.items()):
        lic = distribution_license(dist)
        label = f"{dist.metadata['Name']} {dist.version}"
        details = {"package": name, "version": dist.version, "source": lic.source,
                   "license": lic.raw, "notes": list(lic.notes)}  # fmt: skip
        if lic.tree is None:
            said = f"License {lic.raw!r}" if lic.raw else "no license metadata"
            findings.append(
                Finding(
                    "license.dependencies",
                    f"{label}: license cannot be classified ({said}; no License-Expression or "
                    "license classifier)" + ("" if not policy.unknown else " (unknown=True)"),
                    "warn" if policy.unknown else "fail",
                    {**details, "class": UNKNOWN},
                )
            )
            continue
        verdict = evaluate(lic.tree, policy)
        details["normalized"] = render(lic.tree)
        if not verdict.ok:
            for reason in verdict.reasons:
                findings.append(
                    Finding(
                        "license.dependencies",
                        f"{label} ({lic.source} {render(lic.tree)!r}): {reason}",
                        "fail",
                        details,
                    )
                )
    return findings
