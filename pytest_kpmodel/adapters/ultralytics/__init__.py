"""Ultralytics YOLO-pose (v8 / 11) ``.pt`` checkpoints, run without the ultralytics package.

``allowlist`` (data only, imported by the scanner) lists the globals such a checkpoint may
import; ``standins``, ``blocks`` and ``head`` rebuild and run the network; ``preprocess`` and
``postprocess`` reproduce Ultralytics' letterbox, NMS and mapping back; ``adapter`` is the
``format = "ultralytics"`` loader. Importing this package imports nothing heavy.
"""
