"""The model at another precision, or the reason it cannot be."""

from __future__ import annotations

import pytest
import torch
from bench_fakes import FakeModel

from pytest_kpmodel.bench.precision import BenchUnavailable, with_precision


def test_fp16_on_cpu_and_opaque_precision_are_unavailable():
    from pytest_kpmodel.adapters.options import LoadOptions
    from pytest_kpmodel.adapters.torch_module import TorchDetectionModel

    tdm = TorchDetectionModel(torch.nn.Identity(), LoadOptions(), 17)
    with pytest.raises(BenchUnavailable, match="CUDA"):
        with_precision(tdm, "fp16")
    assert with_precision(tdm, "bf16").precision == "bf16"
    assert with_precision(tdm, "fp32") is tdm
    with pytest.raises(BenchUnavailable, match="precision"):
        with_precision(FakeModel(), "bf16")
