"""Model formats, each loading into the one ``KeypointModel`` interface (see ``base.py``).

``registry.load_model(card, options)`` picks the format's loader; one module per format
(``safetensors_format``, ``pytorch_format`` with ``state_dict``, ``torch_module``,
``torchscript_format``, ``onnx_format``, ``exported_format``, ``python_format``), the families as packages (``detectron2/``, ``ultralytics/``), and what they
share (``onnx_runtime``, ``onnx_export``, ``pt2_archive``, ``builders``, ``options``).

May import: ``errors``, ``card`` (the registry reads the card) and ``security`` (every weights
file is scanned before it is loaded, ``weights_only``; the Ultralytics allowlist extends the
scanner's). Never pytest, ``session``, ``plugin`` or a feature package above it: they use
adapters, never the other way round. Importing the package does not import torch.
"""

from .base import KeypointModel, Prediction
from .registry import available_formats, load_model

__all__ = ["KeypointModel", "Prediction", "available_formats", "load_model"]
