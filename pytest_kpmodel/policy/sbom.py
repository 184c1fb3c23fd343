"""``--kp-sbom=FILE``: a CycloneDX 1.6 JSON SBOM of the environment and the model under test.

Components: every installed Python distribution as a ``library`` (purl ``pkg:pypi/name@version``,
licenses where the metadata states them: License-Expression, License, classifiers — the same
reading as the license check), and the model as a ``machine-learning-model`` with the sha256 of
its weights file, its card's license and its source URL (``distribution`` external reference).
The dependency graph links each distribution to the installed ones it requires, and the model to
the distributions its card requires. The output is checked with the library's JSON schema
validator when that is installed (``cyclonedx-python-lib[json-validation]``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from .. import __version__
from ..errors import KpModelError
from ..provenance.digests import sha256_file
from .dist_license import distribution_license
from .distributions import dist_requirements, installed_distributions, marker_applies
from .spdx import LicenseSyntaxError, Node, Term, parse, render, terms

if TYPE_CHECKING:
    from cyclonedx.model.bom import Bom

    from ..card import ModelCard


@dataclass(frozen=True)
class SbomWritten:
    path: Path
    components: int
    validation: str  # "valid" or "not validated: <reason>"


def _licenses(tree: Term | Node | None, fallback_text: str = ""):
    from cyclonedx.model.license import DisjunctiveLicense, LicenseExpression
    from cyclonedx.spdx import is_supported_id

    if tree is None:
        return [DisjunctiveLicense(name=fallback_text)] if fallback_text else []
    if isinstance(tree, Term) and not tree.exception:
        if is_supported_id(tree.id):
            return [DisjunctiveLicense(id=tree.id)]
        if not tree.id.startswith("LicenseRef-") and " " in tree.id:
            return [DisjunctiveLicense(name=tree.id)]  # a label such as "BSD (variant not stated)"
    if any(" " in t.id for t in terms(tree)):
        return [DisjunctiveLicense(name=render(tree))]  # labels cannot go into an expression
    return [LicenseExpression(render(tree))]


def _model_licenses(spdx: str | None):
    if not spdx:
        return []
    try:
        return _licenses(parse(spdx))
    except LicenseSyntaxError:
        return _licenses(None, spdx)


def build_bom(
    card: ModelCard | None = None,
    *,
    paths: Sequence[str] | None = None,
    model_sha256: str | None = None,
) -> Bom:
    """The SBOM object. ``model_sha256``: a digest already computed (else the file is hashed)."""
    from cyclonedx.model.bom import Bom
    from cyclonedx.model.component import Component, ComponentType
    from cyclonedx.model.tool import ToolRepository

    bom = Bom()
    bom.metadata.tools = ToolRepository(
        components=[
            Component(name="pytest-kpmodel", version=__version__, type=ComponentType.APPLICATION)
        ]
    )
    libs = _add_libraries(bom, installed_distributions(paths))
    if card is not None:
        model = _model_component(card, model_sha256)
        bom.components.add(model)
        needed = set()
        for text in card.dependencies.requires:
            try:
                req = Requirement(text)
            except InvalidRequirement:
                continue
            if marker_applies(req.marker) and canonicalize_name(req.name) in libs:
                needed.add(canonicalize_name(req.name))
        bom.register_dependency(model, [libs[n] for n in sorted(needed)])
    return bom


def _add_libraries(bom: Bom, dists: dict[str, Any]) -> dict[str, Any]:
    """One ``library`` component per installed distribution, linked to those it requires."""
    from cyclonedx.model.component import Component, ComponentType
    from packageurl import PackageURL

    libs: dict[str, Any] = {}
    for name, dist in sorted(dists.items()):
        lic = distribution_license(dist)
        component = Component(
            name=dist.metadata["Name"],
            version=dist.version,
            type=ComponentType.LIBRARY,
            bom_ref=f"pypi:{name}@{dist.version}",
            purl=PackageURL(type="pypi", name=name, version=dist.version),
            licenses=_licenses(lic.tree, lic.raw if lic.source == "none" else ""),
        )
        libs[name] = component
        bom.components.add(component)
    for name, dist in dists.items():
        deps = {canonicalize_name(r.name) for r in dist_requirements(dist)} & libs.keys()
        bom.register_dependency(libs[name], [libs[d] for d in sorted(deps)])
    return libs


def _model_component(card: ModelCard, model_sha256: str | None) -> Any:
    """The ``machine-learning-model`` component: weights digest, license, source, card facts."""
    from cyclonedx.model import (
        ExternalReference,
        ExternalReferenceType,
        HashAlgorithm,
        HashType,
        Property,
        XsUri,
    )
    from cyclonedx.model.component import Component, ComponentType

    m = card.model
    hashes = []
    digest = model_sha256
    if digest is None and m.weights is not None and Path(m.weights).is_file():
        digest = sha256_file(m.weights)
    if digest:
        hashes.append(HashType(alg=HashAlgorithm.SHA_256, content=digest))
    refs, props = [], [Property(name="kpmodel:format", value=m.format)]
    if m.architecture:
        props.append(Property(name="kpmodel:architecture", value=m.architecture))
    if m.weights is not None:
        props.append(Property(name="kpmodel:weights", value=Path(m.weights).name))
    if m.sha256:
        props.append(Property(name="kpmodel:pinned_sha256", value=m.sha256))
    for mod in card.provenance.modifications:
        props.append(Property(name="kpmodel:modification", value=mod))
    source = card.provenance.source
    if source:
        try:
            refs.append(
                ExternalReference(type=ExternalReferenceType.DISTRIBUTION, url=XsUri(source))
            )
        except Exception:  # not a URI: keep it as a property rather than lose it
            props.append(Property(name="kpmodel:source", value=source))
    return Component(
        name=m.name,
        version=m.version or None,
        type=ComponentType.MACHINE_LEARNING_MODEL,
        bom_ref=f"model:{m.name}@{m.version or 'unversioned'}",
        hashes=hashes,
        licenses=_model_licenses(card.license.spdx),
        external_references=refs,
        properties=props,
    )


def sbom_json(bom: Bom) -> str:
    from cyclonedx.output.json import JsonV1Dot6

    return JsonV1Dot6(bom).output_as_string(indent=2)


def validate_sbom(text: str) -> str:
    """'valid', or 'not validated: <why>'; raises KpModelError when the schema rejects it."""
    try:
        from cyclonedx.exception import MissingOptionalDependencyException
        from cyclonedx.schema import SchemaVersion
        from cyclonedx.validation.json import JsonStrictValidator
    except ImportError as exc:  # an old cyclonedx-python-lib without the validation module
        return f"not validated: {exc}"
    try:
        error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(text)
    except MissingOptionalDependencyException:
        return "not validated: install cyclonedx-python-lib[json-validation] for the schema check"
    if error is not None:
        raise KpModelError(f"the SBOM does not validate against CycloneDX 1.6: {error}")
    return "valid"


def write_sbom(
    path: str | os.PathLike[str],
    card: ModelCard | None = None,
    *,
    paths: Sequence[str] | None = None,
    model_sha256: str | None = None,
    validate: bool = True,
) -> SbomWritten:
    """Write the SBOM as JSON to ``path`` (parents created)."""
    bom = build_bom(card, paths=paths, model_sha256=model_sha256)
    text = sbom_json(bom)
    validation = validate_sbom(text) if validate else "not validated: validate=False"
    out = Path(path).expanduser()
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise KpModelError(f"--kp-sbom: cannot write {out}: {exc}") from None
    return SbomWritten(out, len(bom.components), validation)
