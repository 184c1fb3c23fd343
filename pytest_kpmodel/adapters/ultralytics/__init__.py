"""Ultralytics YOLO-pose (v8 / 11) ``.pt`` checkpoints, run without the ultralytics package.

``allowlist`` (data only, imported by the scanner) lists the globals such a checkpoint may
import; ``standins``, ``blocks`` and ``head`` rebuild and run the network; ``preprocess`` and
``postprocess`` reproduce Ultralytics' letterbox, NMS and mapping back; ``kwargs`` checks the
card's ``[model.kwargs]``; ``adapter`` is the ``format = "ultralytics"`` loader and
``onnx_layout`` the ONNX ``yolo-pose`` layout (both decode with ``postprocess``). Importing this package imports nothing heavy.
"""
