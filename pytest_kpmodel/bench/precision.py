"""The model at another precision, for ``kp_bench(precision=...)`` and ``kp_parity``'s rows, and
whether bf16 runs natively on a device (``bf16_emulated``) and, where it does not, how many times
slower than fp32 a bf16 convolution is there (``emulated_bf16_slowdown``)."""

from __future__ import annotations

import platform
import time

from ..errors import AdapterError, KpModelError

BF16_EMULATED_CPU = "bf16 is emulated on this CPU (no AVX512-BF16/AMX): speed not measured"


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
