"""Is loading or running it safe: no pickle payload, no network, no subprocess, no writes?"""

import pytest


@pytest.mark.kp_security(pickle="none", network=False, subprocess=False, writes=False, code=False)
def test_safe_to_load_and_run():
    pass


def test_weights_scan_clean(kp_scan):
    assert kp_scan.verdict == "clean", kp_scan.findings
