from __future__ import annotations

import hashlib
import json

import pytest
from policy_helpers import write_dist, write_policy_card

from pytest_kpmodel.card import load_card
from pytest_kpmodel.errors import KpModelError
from pytest_kpmodel.policy.sbom import validate_sbom, write_sbom

WEIGHTS = b"not really safetensors, but bytes to hash"


@pytest.fixture
def card(tmp_path):
    path = write_policy_card(
        tmp_path / "model",
        """[license]
spdx = "Apache-2.0 OR LicenseRef-acme-eula"

[provenance]
source = "https://models.example.org/kp-policy/1.0.0"
modifications = ["keypoint head: 4 convs"]

[dependencies]
requires = ["alpha>=1", "absent"]""",
        weights=WEIGHTS,
    )
    return load_card(path)


def _fake_env(site):
    write_dist(site, "alpha", "1.0", license_expression="MIT", requires=("Beta_Lib>=2",))
    write_dist(site, "Beta_Lib", "2.1", license="BSD",
               classifiers=("License :: OSI Approved :: BSD License",))  # fmt: skip
    write_dist(site, "gamma", "0.3", license="Some custom text nobody can classify")
    write_dist(
        site, "delta", "5", license_expression="GPL-2.0-or-later WITH Classpath-exception-2.0"
    )


def test_sbom_written_and_parsed_back(tmp_path, site, card):
    _fake_env(site)
    out = tmp_path / "reports" / "sbom.cdx.json"
    written = write_sbom(out, card, paths=[str(site)])
    assert written.path == out and written.components == 5
    assert written.validation == "valid" or written.validation.startswith("not validated")

    doc = json.loads(out.read_text())
    assert doc["bomFormat"] == "CycloneDX" and doc["specVersion"] == "1.6"
    comps = {c["name"]: c for c in doc["components"]}
    assert set(comps) == {"alpha", "Beta_Lib", "gamma", "delta", "kp-policy"}

    alpha = comps["alpha"]
    assert alpha["type"] == "library" and alpha["purl"] == "pkg:pypi/alpha@1.0"
    assert alpha["licenses"] == [{"license": {"id": "MIT"}}]
    assert comps["Beta_Lib"]["purl"] == "pkg:pypi/beta-lib@2.1"
    assert comps["Beta_Lib"]["licenses"] == [{"license": {"name": "BSD (variant not stated)"}}]
    assert comps["gamma"]["licenses"] == [
        {"license": {"name": "Some custom text nobody can classify"}}
    ]
    assert comps["delta"]["licenses"] == [
        {"expression": "GPL-2.0-or-later WITH Classpath-exception-2.0"}
    ]

    model = comps["kp-policy"]
    assert model["type"] == "machine-learning-model" and model["version"] == "1.0.0"
    assert model["hashes"] == [{"alg": "SHA-256", "content": hashlib.sha256(WEIGHTS).hexdigest()}]
    assert model["licenses"] == [{"expression": "Apache-2.0 OR LicenseRef-acme-eula"}]
    assert model["externalReferences"] == [
        {"type": "distribution", "url": "https://models.example.org/kp-policy/1.0.0"}
    ]
    props = {(p["name"], p["value"]) for p in model["properties"]}
    assert ("kpmodel:format", "safetensors") in props
    assert ("kpmodel:modification", "keypoint head: 4 convs") in props

    deps = {d["ref"]: d.get("dependsOn", []) for d in doc["dependencies"]}
    assert deps[model["bom-ref"]] == [alpha["bom-ref"]]  # "absent" is not installed
    assert deps[alpha["bom-ref"]] == [comps["Beta_Lib"]["bom-ref"]]


def test_sbom_digest_passed_in_is_used(tmp_path, site, card):
    out = write_sbom(tmp_path / "s.json", card, paths=[str(site)], model_sha256="ab" * 32).path
    [model] = json.loads(out.read_text())["components"]
    assert model["hashes"][0]["content"] == "ab" * 32


def test_sbom_of_environment_only(tmp_path, site):
    _fake_env(site)
    written = write_sbom(tmp_path / "env.json", None, paths=[str(site)])
    doc = json.loads(written.path.read_text())
    assert {c["type"] for c in doc["components"]} == {"library"}


def test_schema_validation_when_available(tmp_path, site, card):
    pytest.importorskip("jsonschema")
    _fake_env(site)
    assert write_sbom(tmp_path / "v.json", card, paths=[str(site)]).validation == "valid"
    with pytest.raises(KpModelError, match="does not validate"):
        validate_sbom(json.dumps({"bomFormat": "CycloneDX", "specVersion": "1.6", "oops": 1}))


def test_unwritable_path_is_a_clear_error(tmp_path, site):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(KpModelError, match="--kp-sbom: cannot write"):
        write_sbom(blocker / "sbom.json", None, paths=[str(site)], validate=False)
