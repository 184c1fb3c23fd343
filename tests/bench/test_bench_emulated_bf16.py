"""kp_bench and the baseline comparison do not time bf16 on a CPU that emulates it: the timing
would measure the emulation (27-170x fp32 per convolution), not bf16. The capability is faked:
the tests must not depend on the CPU they run on."""

from __future__ import annotations

import pytest
from bench_fakes import FakeClock, FakeModel, images

from pytest_kpmodel.bench import precision
from pytest_kpmodel.bench.measure import measure
from pytest_kpmodel.bench.precision import BenchUnavailable, refuse_emulated_bf16_timing
from pytest_kpmodel.bench.relative import alternating
from pytest_kpmodel.bench.settings import BenchSettings

SETTINGS = BenchSettings(image_size=None, warmup=1, iters=3, num_images=1, precision="bf16")


class Bf16Model(FakeModel):
    precision = "bf16"  # already at bf16: with_precision hands it back as it is


@pytest.fixture(params=[False, True], ids=["emulated", "native"])
def native(request, monkeypatch):
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: request.param)
    return request.param


def test_kp_bench_times_bf16_only_where_the_cpu_has_it(native):
    model = Bf16Model(clock=FakeClock())
    if native:
        result = measure(model, images=images((8, 8)), settings=SETTINGS, clock=model.clock)
        assert result.latency.p50 == pytest.approx(10.0)
        return
    with pytest.raises(BenchUnavailable) as refused:
        measure(model, images=images((8, 8)), settings=SETTINGS, clock=model.clock)
    assert model.calls == 0  # refused before any call, warm-up included
    message = str(refused.value)
    assert message.startswith("kp_bench(precision='bf16') on cpu: bf16 is emulated on this CPU")
    assert "Time bf16 on a CPU with AVX512-BF16/AMX or on a GPU" in message
    # kp_parity(run_emulated_bf16=True) asks for the timing anyway
    forced = measure(model, images=images((8, 8)), settings=SETTINGS, clock=model.clock,
                     time_emulated_bf16=True)  # fmt: skip
    assert forced.latency.p50 == pytest.approx(10.0)


def test_the_baseline_comparison_refuses_emulated_bf16_too(native):
    clock = FakeClock()
    cand, base = Bf16Model(clock=clock), Bf16Model(clock=clock)
    run = lambda: alternating(cand, base, images=images((8, 8)), settings=SETTINGS,  # noqa: E731
                              rounds=2, clock=clock)  # fmt: skip
    if native:
        assert run().ratio == pytest.approx(1.0)
    else:
        with pytest.raises(BenchUnavailable, match="kp_bench_vs_baseline"):
            run()
        assert cand.calls == base.calls == 0


def test_only_bf16_on_the_cpu_is_refused(monkeypatch):
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: False)
    refuse_emulated_bf16_timing("fp32", "cpu", "kp_bench")
    refuse_emulated_bf16_timing("bf16", "cuda:0", "kp_bench")  # GPUs are not second-guessed
    with pytest.raises(BenchUnavailable):
        refuse_emulated_bf16_timing("bf16", "cpu", "kp_bench")
