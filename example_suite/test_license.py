"""May we ship a product with this model? Its license, and those of what it needs to run."""

import pytest


@pytest.mark.kp_license(allow=["Apache-2.0", "MIT", "BSD-3-Clause"], copyleft=False)
def test_model_license_is_permissive():
    pass


@pytest.mark.kp_license(
    licenses="dependencies",
    # torch's CUDA wheels pull NVIDIA's runtime libraries, under NVIDIA's proprietary terms,
    # which we accept for the GPU build.
    commercial=True,
    unknown=True,  # packages without license metadata are reported as warnings, not failures
)
def test_dependency_licenses_are_acceptable():
    pass
