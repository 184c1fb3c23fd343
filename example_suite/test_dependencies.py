"""Will the model run on our stack? Python, packages, CUDA, GPU architecture, OS, custom ops."""

import pytest


@pytest.mark.kp_dependencies  # the card's own [dependencies] against this machine
def test_runs_on_this_machine():
    pass


@pytest.mark.kp_dependencies(
    python=">=3.11",
    requires=["torch>=2.4", "torchvision>=0.19"],
    os=["linux"],
    custom_ops=[],  # any op or layer outside torch/torchvision fails: we deploy stock runtimes
)
def test_fits_our_deployment_stack():
    pass
