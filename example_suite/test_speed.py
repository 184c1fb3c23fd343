"""Is it fast and small enough: FPS, latency percentiles, peak memory, and deployment variants?

On a GPU these measure CUDA time with synchronisation and the allocator peak; on the CPU the
VRAM gate skips with its reason. Results are also stored by pytest-benchmark:
``--benchmark-json=bench.json`` and later ``--benchmark-compare``.
"""

import pytest

# Native 384x288 images from the evaluation set; bounded work for a CPU run.
BENCH = {"image_size": None, "warmup": 3, "iters": 20, "num_images": 8}


@pytest.mark.kp_bench(**BENCH)
@pytest.mark.kp_thresholds(fps=2.0, latency_p50_ms=500, latency_p90_ms=800)
def test_fast_enough():
    pass


@pytest.mark.kp_bench(**BENCH)
@pytest.mark.kp_thresholds(vram_mib=1024)
def test_fits_in_gpu_memory():
    pass


@pytest.mark.kp_bench(**BENCH)
def test_latency_profile(kp_bench):
    result = kp_bench()
    print(result.describe())
    stages = result.stages["stages_ms"]
    # The keypoint head must not dominate: ROI heads under 70% of the model's time.
    assert stages["roi_heads"] < 0.7 * result.stages["stage_total_ms"], stages


@pytest.mark.kp_bench(**BENCH)
def test_deployment_variants_agree(kp_parity):
    """fp32 vs bf16, fp16 (GPU), ONNX Runtime and torch.export: same detections, same AP."""
    print(kp_parity.format())
    # Exported graphs must give the same detections; reduced precision may move keypoints a
    # little (bf16 keeps 8 bits of mantissa: about 0.8 OKS against fp32 for this model).
    min_oks = {"onnx": 0.99, "exported": 0.99, "fp16": 0.9, "bf16": 0.75}
    for row in kp_parity.rows:
        if row.status == "ok" and row.variant in min_oks:
            assert row.mean_oks >= min_oks[row.variant], (row.variant, row.mean_oks)
