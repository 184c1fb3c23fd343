"""Speed through the plugin: kp_bench, speed gates, pytest-benchmark storage, xdist skips."""

from __future__ import annotations

import json

SMALL = "image_size=(64, 96), warmup=1, iters=3, num_images=2, stage_iters=1"


def test_bench_fixture_gates_and_benchmark_json(pytester, tiny_card):
    pytester.makepyfile(
        f"""
        import pytest

        @pytest.mark.kp_bench({SMALL})
        def test_bench(kp_bench):
            r = kp_bench()
            assert r.latency.p50 > 0 and r.fps > 0
            assert set(r.stages["stages_ms"]) >= {{"backbone", "rpn", "roi_heads"}}

        @pytest.mark.kp_bench({SMALL})
        @pytest.mark.kp_thresholds(fps=1e9, latency_p50_ms=1e-6, latency_p90_ms=1e9)
        def test_too_slow():
            pass

        @pytest.mark.kp_bench({SMALL})
        @pytest.mark.kp_thresholds(vram_mib=1024)
        def test_vram_needs_gpu():
            pass
        """
    )
    result = pytester.runpytest(
        f"--kp-model={tiny_card}", "--kp-report=out", "--benchmark-json=bench.json", "-rs"
    )
    result.assert_outcomes(passed=1, failed=1, skipped=1)
    out = result.stdout.str()
    assert "kp_thresholds: FPS (throughput" in out and "kp_thresholds: latency p50" in out
    assert "kp_thresholds: latency p90" not in out  # the gate that passed is not a failure
    result.stdout.fnmatch_lines(["*vram_mib=1024* cannot be checked on cpu*"])
    stored = json.loads((pytester.path / "bench.json").read_text())
    assert stored["benchmarks"][0]["extra_info"]["fps"] > 0
    assert "torch" in stored["machine_info"]
    report = json.loads((pytester.path / "out" / "kp-report.json").read_text())
    assert report["bench"][0]["batch_size"] == 1 and report["bench"][0]["latency_ms"]["p50"] > 0


def test_speed_tests_skip_under_xdist(pytester, tiny_card):
    pytester.makepyfile(
        f"""
        import pytest

        @pytest.mark.kp_bench({SMALL})
        def test_bench(kp_bench):
            kp_bench()

        def test_card(kp_card):
            pass
        """
    )
    result = pytester.runpytest(f"--kp-model={tiny_card}", "-n", "1", "-rs")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["*xdist*"])
