"""pytest_kpmodel.lazy: a package's names imported from their modules on first use."""

from __future__ import annotations

import subprocess
import sys

import pytest

from pytest_kpmodel.lazy import lazy_exports


def test_names_resolve_once_and_unknown_names_are_attribute_errors():
    namespace = {"__name__": "pytest_kpmodel.security"}
    getattr_, dir_ = lazy_exports(namespace, {"ScanLimits": "report"})
    from pytest_kpmodel.security.report import ScanLimits

    assert getattr_("ScanLimits") is ScanLimits and namespace["ScanLimits"] is ScanLimits
    assert "ScanLimits" in dir_()
    with pytest.raises(AttributeError, match="'pytest_kpmodel.security' has no attribute 'nope'"):
        getattr_("nope")


def test_importing_one_module_does_not_build_the_package():
    code = ("import sys, pytest_kpmodel.security.policy, pytest_kpmodel.provenance.digests\n"
            "print(sorted(m for m in ('pytest_kpmodel.security.scan', "
            "'pytest_kpmodel.provenance.signing') if m in sys.modules))")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
