"""What every ONNX output layout shares (``format = "onnx"``: torchvision's, ``yolo-pose``,
``detectron2``): the model runs in the precision it was exported in, external-data tensors must
lie inside the card's folder, and the ONNX Runtime session opens on the requested device with
``torch.get_num_threads()`` intra-op threads, so CPU timings compare with torch's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import AdapterError, first_line
from .options import LoadOptions


def require_fp32(card: Any, options: LoadOptions) -> None:
    if options.precision != "fp32":
        raise AdapterError(
            f"{card.path}: [model.format] 'onnx' runs in the precision it was exported in; "
            f"--kp-precision={options.precision} is not available for it (use fp32)"
        )


def check_external_data(path: Path, folder: Path) -> None:
    """Refuse external-data tensors whose files lie outside ``folder`` (needs ``onnx``)."""
    try:
        import onnx
    except ImportError:
        return
    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # noqa: BLE001
        raise AdapterError(f"{path}: not a readable ONNX model: {first_line(exc)}") from None
    root = folder.resolve()
    tensors = list(proto.graph.initializer)
    for node in proto.graph.node:
        tensors += [a.t for a in node.attribute if a.HasField("t")]
    for t in tensors:
        if t.data_location != onnx.TensorProto.EXTERNAL:
            continue
        location = next((e.value for e in t.external_data if e.key == "location"), "")
        target = (path.parent / location).resolve()
        if not target.is_relative_to(root):
            raise AdapterError(
                f"{path}: tensor {t.name!r} reads external data from {location!r}, outside "
                f"the card's folder {root}"
            )


def open_session(path: str | Path, device: Any) -> Any:
    """An ONNX Runtime session on ``device``: CPUExecutionProvider, with CUDAExecutionProvider
    first for a CUDA device (an error when this onnxruntime build lacks it)."""
    import torch

    try:
        import onnxruntime as ort
    except ImportError:
        raise AdapterError(
            f"{path}: [model.format] 'onnx' needs onnxruntime (pip install onnxruntime, or "
            "onnxruntime-gpu for CUDA)"
        ) from None
    device = torch.device(device)
    providers: list[Any] = ["CPUExecutionProvider"]
    if device.type == "cuda":
        available = ort.get_available_providers()
        if "CUDAExecutionProvider" not in available:
            raise AdapterError(
                f"{path}: device {device} requested but this onnxruntime has no "
                f"CUDAExecutionProvider (has: {', '.join(available)}); install "
                "onnxruntime-gpu or pass --kp-device=cpu"
            )
        providers.insert(0, ("CUDAExecutionProvider", {"device_id": device.index or 0}))
    so = ort.SessionOptions()
    so.intra_op_num_threads = torch.get_num_threads()
    so.log_severity_level = 3
    try:
        return ort.InferenceSession(str(path), so, providers=providers)
    except Exception as exc:  # noqa: BLE001 - ORT raises its own exception types
        raise AdapterError(f"{path}: onnxruntime cannot load it: {first_line(exc)}") from None
