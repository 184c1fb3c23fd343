"""Is it fast and small enough: FPS, latency percentiles, peak memory, and deployment variants?

Two kinds of speed gate, for two questions:

- **relative** (``kp_no_regression(fps=...)``): is it slower than the model it replaces? Both
  models are timed in alternating rounds on the same images and the gate judges the median
  ratio of their throughputs, so a busy machine slows both alike and the gate still holds;
- **absolute** (``kp_thresholds(fps=..., latency_p90_ms=...)``): is it fast enough for our
  deployment? That depends on the machine; when it fails on a machine that was busy while
  timing, the failure says so ("machine busy: load 6.1 on 2 cores during timing").

On a GPU these measure CUDA time with synchronisation and the allocator peak; on the CPU the
VRAM gate skips with its reason. Results are also stored by pytest-benchmark:
``--benchmark-json=bench.json`` and later ``--benchmark-compare``. Family-agnostic: R-CNN
models report per-stage times, other families one opaque stage.
"""

import pytest

# Native 384x288 images from the evaluation set; bounded work for a CPU run.
BENCH = {"image_size": None, "warmup": 3, "iters": 20, "num_images": 8}
# The deployment's requirement on this class of machine (a 2-core CPU): generous enough to
# hold with a CPU-heavy neighbour (about 2 FPS measured then, against 20-36 quiet).
MIN_FPS, MAX_P50_MS, MAX_P90_MS = 1.0, 1000, 2000
MAX_SLOWDOWN = 0.2  # against the base model: at most 20% fewer images per second


@pytest.fixture
def has_baseline(kp_session):
    """The relative gate needs a model to compare with: --kp-baseline or provenance.base."""
    if kp_session.settings.baseline is None and kp_session.card.provenance.base is None:
        pytest.skip(f"no baseline to compare with: {kp_session.card.path} names no base model")


@pytest.mark.kp_bench(**BENCH)
@pytest.mark.kp_no_regression(box_ap=None, kp_ap=None, fps=MAX_SLOWDOWN)
def test_not_slower_than_base(has_baseline):
    """Holds on a busy machine: the ratio, not the absolute FPS, is what it judges."""


@pytest.mark.kp_bench(**BENCH)
@pytest.mark.kp_thresholds(fps=MIN_FPS, latency_p50_ms=MAX_P50_MS, latency_p90_ms=MAX_P90_MS)
def test_fast_enough():
    """Fails on a machine too slow (or too busy) for the deployment, naming the load."""


@pytest.mark.kp_bench(**BENCH)
@pytest.mark.kp_thresholds(vram_mib=1024)
def test_fits_in_gpu_memory():
    pass


@pytest.mark.kp_bench(**BENCH)
def test_latency_profile(kp_bench):
    result = kp_bench()
    print(result.describe())
    profile = result.stages
    stages, total = profile["stages_ms"], profile["stage_total_ms"]
    # Any family: the stages are parts of the call and account for it (R-CNN models: the
    # medians of preprocess, backbone, RPN, ROI heads, postprocess and the rest; others: one
    # opaque stage, the call itself).
    assert stages and all(ms >= 0 for ms in stages.values()), profile
    assert 0.5 * total <= sum(stages.values()) <= 1.5 * total, profile
    if "roi_heads" not in stages:
        pytest.skip(
            f"no roi_heads stage in this model's profile ({profile['stage_kind']}): the "
            "keypoint-head share applies to R-CNN models"
        )
    # The keypoint head must not dominate: ROI heads under 70% of the model's time.
    assert stages["roi_heads"] < 0.7 * total, stages


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
