"""The model's keypoint count against the card's ``[keypoints]``, at load where it can be read.

A model that predicts 17 keypoints behind a card whose ``[keypoints]`` names 14 (or the other
way round) would be scored against the wrong names, sigmas and flip pairs, or fail deep inside
the evaluation with a shape error. So the count is checked once the model is built: from
``[model.kwargs] num_keypoints`` (torchvision's and the zoo's builders take it), from the
weights of a torchvision-style keypoint predictor (state dicts, TorchScript, torch.export, a
python factory's module), or from an ONNX graph's static ``keypoints`` output shape. Where no
static count exists (a model with its own ``predict``, a dynamic ONNX output), the first
prediction of another count is refused with the same message (``check_predicted``).
The families (detectron2, Ultralytics) check their own config or ``kpt_shape`` at load.
"""

from __future__ import annotations

from typing import Any

from ..errors import AdapterError, CardError

# torchvision's KeypointRCNNPredictor: a ConvTranspose2d whose weight is [in, K, 4, 4]
PREDICTOR_WEIGHT = "keypoint_predictor.kps_score_lowres.weight"


def mismatch(card, found: int, source: str) -> CardError:
    """The one message: both counts, where the model's comes from, the card key to fix."""
    k = card.keypoints
    return CardError(
        card.path,
        f"the model predicts {found} keypoints per detection ({source}) but [keypoints] "
        f"describes {k.label}; describe the model's {found} keypoints in [keypoints] (names, "
        f"or a preset of {found}) or use a model that predicts {k.num_keypoints}",
        "keypoints",
    )


def check_kwargs(card) -> None:
    """``[model.kwargs] num_keypoints`` against ``[keypoints]``, before anything is built."""
    value = card.model.kwargs.get("num_keypoints")
    known = isinstance(value, int) and not isinstance(value, bool)
    if known and value != card.keypoints.num_keypoints:
        raise mismatch(card, value, f"[model.kwargs] num_keypoints = {value}")


def module_count(module: Any) -> tuple[int, str] | None:
    """(K, the tensor it was read from) for a torchvision-style keypoint predictor, else None."""
    state = getattr(module, "state_dict", None)
    if state is None:
        return None
    try:
        tensors = state()
    except Exception:  # noqa: BLE001 - a module without a readable state dict: no static count
        return None
    for name, t in tensors.items():
        shape = getattr(t, "shape", ())
        if name.endswith(PREDICTOR_WEIGHT) and len(shape) == 4:
            return int(shape[1]), f"{name} {tuple(int(s) for s in shape)}"
    return None


def check_module(card, module: Any) -> None:
    found = module_count(module)
    if found is not None and found[0] != card.keypoints.num_keypoints:
        raise mismatch(card, found[0], f"the weights' {found[1]}")


def check_onnx_outputs(card, outputs: list[Any]) -> None:
    """An ONNX graph whose ``keypoints`` output (by name) has a static [N, K, 3] shape."""
    for out in outputs:
        shape = out.shape or []
        static = out.name == "keypoints" and len(shape) >= 2 and isinstance(shape[-2], int)
        if static and shape[-2] != card.keypoints.num_keypoints:
            raise mismatch(card, shape[-2], f"the graph's output keypoints {list(shape)}")


def check_predicted(name: str, expected: int, found: int) -> None:
    """A prediction's keypoint count, for models without a static one (the adapter knows the
    card's count, not the card)."""
    if found != expected:
        raise AdapterError(
            f"model {name or '(unnamed)'} predicted {found} keypoints per detection but the "
            f"card's [keypoints] describes {expected}; name the model's {found} keypoints in "
            "[keypoints] (names, or preset = ...)"
        )
