from __future__ import annotations

from pathlib import Path

import pytest
from prov_helpers import SOURCE

from kp_factories import make_model
from pytest_kpmodel.provenance.keys import generate_keypair
from pytest_kpmodel.provenance.signing import sign_card


@pytest.fixture(scope="session")
def keys(tmp_path_factory) -> dict[str, Path]:
    """Two Ed25519 key pairs: 'vendor' (trusted by the tests) and 'other' (not trusted)."""
    folder = tmp_path_factory.mktemp("keys")
    vendor, vendor_pub = generate_keypair(folder / "vendor")
    other, other_pub = generate_keypair(folder / "other")
    return {"vendor": vendor, "vendor_pub": vendor_pub, "other": other, "other_pub": other_pub}


@pytest.fixture(scope="session")
def base_card(tmp_path_factory, keys) -> Path:
    """A signed random-weight tiny base model (seed 1)."""
    card = make_model(tmp_path_factory.mktemp("base") / "base", seed=1, name="tiny-base")
    with card.open("a") as f:
        f.write('\n[provenance]\nsource = "https://models.example.org/tiny-base/1.0"\n')
    sign_card(card, keys["vendor"])
    return card


@pytest.fixture(scope="session")
def signed_card(tmp_path_factory, keys, base_card) -> Path:
    """A signed tiny model (seed 0) naming its source and (absolute) base. Copy before editing."""
    card = make_model(tmp_path_factory.mktemp("signed") / "tiny", seed=0)
    with card.open("a") as f:
        f.write(
            f'\n[provenance]\nsource = "{SOURCE}"\nbase = "{base_card}"\n'
            'modifications = ["retrained keypoint head"]\n'
        )
    sign_card(card, keys["vendor"])
    return card
