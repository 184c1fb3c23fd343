"""The model at another precision, for ``kp_bench(precision=...)`` and ``kp_parity``'s rows, and
whether bf16 runs natively on a device (``bf16_emulated``) and, where it does not, how many times
slower than fp32 a bf16 convolution is there (``emulated_bf16_slowdown``): a bf16 timing there is
refused (``refuse_emulated_bf16_timing``), and bf16 predictions projected past
``EMULATED_BF16_BUDGET_S`` are not made (``emulated_bf16_over_budget``)."""

from __future__ import annotations

import platform
import time
from collections.abc import Callable
from typing import Any

from ..errors import AdapterError, KpModelError

BF16_EMULATED_CPU = "bf16 is emulated on this CPU (no AVX512-BF16/AMX): speed not measured"
# The most bf16 predictions may be projected to take where the CPU emulates bf16 (kp_parity's bf16
# row, kp_precision_drop("bf16")): emulated bf16 on a full-size R-CNN takes hours, fp32 minutes.
EMULATED_BF16_BUDGET_S = 600.0


class BenchUnavailable(KpModelError):
    """The benchmark cannot run here (e.g. fp16 without CUDA); the test skips with this reason."""


def with_precision(model, precision: str):
    """``model`` running at ``precision``: the same object when it already does, a view sharing
    the module with another autocast dtype for torch models; ``BenchUnavailable`` otherwise."""
    current = getattr(model, "precision", "fp32")
    if precision == current:
        return model
    from ..security.guarded_model import GuardedModel

    if isinstance(model, GuardedModel):  # the variant runs under the same runtime guard
        return GuardedModel(with_precision(model.inner, precision), model.guard)
    from ..adapters.options import LoadOptions
    from ..adapters.torch_module import TorchDetectionModel

    own = getattr(model, "with_precision", None)  # a family adapter that switches itself
    if own is not None and not isinstance(model, TorchDetectionModel):
        try:
            return own(precision)
        except AdapterError as exc:
            raise BenchUnavailable(str(exc)) from None
    if not isinstance(model, TorchDetectionModel):
        raise BenchUnavailable(
            f"{type(model).__name__} runs at the precision it was built for ({current}); "
            f"{precision} cannot be benchmarked for it"
        )
    try:
        return TorchDetectionModel(
            model.module, LoadOptions(device=str(model.device), precision=precision),
            model.num_keypoints, model.name,
        )  # fmt: skip
    except AdapterError as exc:
        raise BenchUnavailable(str(exc)) from None


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 in hardware: x86 with AVX512-BF16 or AMX, or an Arm CPU
    whose oneDNN build has bf16 kernels. Elsewhere (e.g. AVX2 only) torch.autocast's bf16
    convolutions and matmuls run on converting fallback kernels: 27-170x the fp32 time per
    convolution, measured on an AVX2 CPU (benchmarks/parity_bounded.py)."""
    import torch

    cpu = torch.cpu
    for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"):
        check = getattr(cpu, name, None)  # private helpers: absent from some torch builds
        if check is not None and check():
            return True
    if platform.machine().lower() in ("x86_64", "amd64", "i386", "i686"):
        return False
    try:  # Arm: oneDNN says whether it has bf16 kernels for this CPU
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def bf16_emulated(device: str) -> str | None:
    """Why a bf16 timing on ``device`` would not say how fast bf16 is (the reason, for a
    report's note), or None when bf16 runs natively there. Only the CPU is checked: that is
    where the emulation costs many times the fp32 time (GPUs are not second-guessed)."""
    if str(device).split(":")[0] != "cpu":
        return None
    return None if cpu_has_native_bf16() else BF16_EMULATED_CPU


def emulated_bf16_slowdown() -> float:
    """How many times its fp32 time one bf16 3x3 convolution (64 channels, 56x56) takes under
    ``torch.autocast`` on this CPU: the factor ``kp_parity`` projects a bf16 row's predictions
    with. Without AVX512-BF16/AMX bf16 convolutions run on a naive GEMM: this one measured 27-36x
    fp32 on an AVX2 CPU, a 256-channel one at 50x84 170x (a linear layer: 8x), so the projection
    is a lower bound for a full-size detector. Takes 0.2 s where bf16 is slow."""
    import torch

    conv = torch.nn.Conv2d(64, 64, 3, padding=1).eval()
    x = torch.rand(1, 64, 56, 56)
    seconds = {}
    with torch.inference_mode():
        for bf16 in (False, True):
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                conv(x)  # the first call allocates and picks kernels
                t0 = time.perf_counter()
                conv(x)
                seconds[bf16] = time.perf_counter() - t0
    return seconds[True] / max(seconds[False], 1e-9)


def refuse_emulated_bf16_timing(precision: str, device: str, what: str) -> None:
    """``BenchUnavailable`` for a bf16 timing (``what``, e.g. "kp_bench(precision='bf16')") on
    a CPU that emulates bf16: it would time the emulation, not bf16 where one deploys it."""
    if precision != "bf16" or bf16_emulated(device) is None:
        return
    raise BenchUnavailable(
        f"{what} on {device}: bf16 is emulated on this CPU (no AVX512-BF16/AMX), where a bf16 "
        "convolution takes 27-170x its fp32 time, so a timing would measure the emulation, not "
        "bf16; not timed. Time bf16 on a CPU with AVX512-BF16/AMX or on a GPU; "
        'kp_precision_drop("bf16") still measures its accuracy here'
    )


def emulated_bf16_over_budget(fp32_seconds: float, images: int, who: str, hint: str) -> str | None:
    """Why bf16 predictions of ``images`` images are not made on a CPU that emulates bf16: their
    projection, ``fp32_seconds`` (the fp32 time of the same images) times
    ``emulated_bf16_slowdown()``, exceeds ``EMULATED_BF16_BUDGET_S``. None when they fit, or
    when the probe cannot run (then they are made). ``who`` owns the budget ("kp_parity's");
    ``hint`` ends the reason with how to run them anyway."""
    try:
        factor = emulated_bf16_slowdown()
    except Exception:  # noqa: BLE001 - a probe that cannot run must not stop the run: run it
        return None
    projected = fp32_seconds * factor
    if projected <= EMULATED_BF16_BUDGET_S:
        return None
    return (
        f"bf16 is emulated on this CPU (no AVX512-BF16/AMX): a bf16 convolution takes "
        f"{factor:.0f}x its fp32 time here, so predicting {images} images would take at least "
        f"{duration(projected)} (fp32: {duration(fp32_seconds)}), over {who} "
        f"{duration(EMULATED_BF16_BUDGET_S)} for it; not run. A CPU with AVX512-BF16/AMX or a "
        f"GPU runs it ({hint})"
    )


def emulated_bf16_drop_reason(reference, variant, cached: Callable[[Any], bool]) -> str | None:
    """Why ``kp_precision_drop("bf16")`` does not make the bf16 predictions of ``variant`` (a
    ``KpSession`` at bf16; ``reference`` at fp32): the CPU emulates bf16, they are not cached
    (``cached(session)``), and the fp32 time of the set times the emulation's slowdown exceeds
    the budget. None when they are made."""
    if bf16_emulated(variant.device) is None or cached(variant):
        return None
    images = len(reference.dataset)
    seconds = reference.predictions.seconds or images * _fp32_seconds_per_image(reference)
    return emulated_bf16_over_budget(
        seconds, images, "kp_precision_drop's",
        'or kp_precision_drop("bf16", run_emulated_bf16=True) runs it here regardless',
    )  # fmt: skip


def _fp32_seconds_per_image(reference) -> float:
    """The fp32 model's time on the set's first image (its second call: the first one warms
    up), for fp32 predictions that came from the cache and so carry no time."""
    from ..predictions import predict_dataset

    first = reference.dataset.subset([0])
    calls = [predict_dataset(reference.model, first, num_workers=0, progress=lambda n: None)
             for _ in range(2)]  # fmt: skip
    return calls[-1].seconds


def duration(seconds: float) -> str:
    return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.0f} min"
