"""The model at another precision, for ``kp_bench(precision=...)`` and ``kp_parity``'s rows."""

from __future__ import annotations

from ..errors import AdapterError, KpModelError


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
