"""The RSS sampler: peaks with a fake reader and a real allocation."""

from __future__ import annotations

import time

import pytest
import torch

from pytest_kpmodel.bench.memory import MIB, RssSampler, rss_reader


def test_rss_sampler_peak_minus_before_with_a_fake_reader():
    values = iter([100 * MIB, 120 * MIB, 180 * MIB, 130 * MIB] + [110 * MIB] * 10_000)
    sampler = RssSampler(interval_s=0.0005, reader=lambda: next(values))
    sampler.start()
    time.sleep(0.05)
    sampler.stop()
    out = sampler.to_json()
    assert out["rss_before_mib"] == pytest.approx(100.0)
    assert out["rss_peak_mib"] == pytest.approx(180.0)
    assert out["rss_peak_increase_mib"] == pytest.approx(80.0)
    assert out["rss_samples"] >= 4


@pytest.mark.parametrize("use_hwm", [None, False])
def test_rss_peak_sees_a_real_allocation_freed_before_the_end(use_hwm):
    read, reason = rss_reader()
    if read is None:
        pytest.skip(reason)
    sampler = RssSampler(interval_s=0.001, use_hwm=use_hwm)
    sampler.start()
    block = torch.ones(64 * MIB // 4)  # 64 MiB, touched
    time.sleep(0.05)
    del block
    sampler.stop()
    out = sampler.to_json()
    assert out["rss_peak_increase_mib"] > 32, out
    assert out["rss_peak_mib"] - out["rss_before_mib"] == pytest.approx(
        out["rss_peak_increase_mib"]
    )
    if use_hwm is False:
        assert out["rss_method"].startswith("sampled")


def test_rss_sampler_without_reader_reports_why():
    sampler = RssSampler(use_hwm=False)
    sampler.read, sampler.unavailable = None, "no RSS here"
    sampler.start()
    sampler.stop()
    assert sampler.to_json() == {"rss_skipped": "no RSS here"}
