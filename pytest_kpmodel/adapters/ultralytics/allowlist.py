"""The reviewed allow-list for Ultralytics YOLO-pose checkpoints (v8 and 11), an opt-in profile.

Selected by the card key ``[model] allowlist = "ultralytics"``, the marker argument
``kp_security(allowlist=["ultralytics"])`` or ``kpmodel scan --allowlist ultralytics``; without
it an Ultralytics ``.pt`` is refused and every class it needs is named.

An Ultralytics checkpoint is ``torch.save`` of a dict whose ``"model"`` (or ``"ema"``) is a whole
``nn.Module`` (``PoseModel``) plus plain data (date, version, ``train_args``...). A module is
pickled as ``NEWOBJ cls()`` followed by ``BUILD {its __dict__}``; the scanner accepts exactly that
for the ``module`` entries below (no arguments, a str-keyed state, no dunder keys) and nothing
else. Loading never imports ultralytics: each ``ultralytics.*`` name is rebuilt as the plugin's
own stand-in class (``standins.STAND_INS``), whose ``forward`` the plugin implements; the
``torch.nn`` names are torch's own classes.

How the list was made: by saving ``yolov8n-pose.yaml`` and ``yolo11n-pose.yaml`` models with
ultralytics 8.4 (``YOLO.save`` and the trainer's stripped checkpoint, ``strip_optimizer``, after
an eval forward as the trainer's validation does) under torch 2.14, and a YOLO11 pose model
trained by ``yolo train``, and listing every global their pickles import (the committed test
checkpoints under ``tests/adapters/ultralytics/data`` are re-scanned by the tests). Deliberately not listed:
``ultralytics.utils.IterableSimpleNamespace`` (only in unfinished ``last.pt`` files; a finished
checkpoint keeps ``args`` as a dict), loss and assigner classes (training state), and the blocks
of other families (YOLO26 ``Pose26``, RT-DETR, YOLO-World ...): their forward passes are not
implemented here.
"""

from __future__ import annotations

from ...security.allowlist import Allowed

_BLOCK = "ultralytics.nn.modules.block"
_CONV = "ultralytics.nn.modules.conv"

_MODULES: list[tuple[str, str, str]] = [
    (
        "ultralytics.nn.tasks",
        "PoseModel",
        "The checkpoint's root module: the layer list (model), the saved-output indices (save), "
        "stride, kpt_shape, names, yaml and args as plain data.",
    ),
    (_CONV, "Conv", "Conv2d + BatchNorm2d + activation, the basic layer of every YOLO block."),
    (_CONV, "DWConv", "Depth-wise Conv (a Conv with groups = gcd(c1, c2)); YOLO11 head branches."),
    (_CONV, "Concat", "Concatenates the outputs of earlier layers along one dimension (d)."),
    (_BLOCK, "Bottleneck", "Two Convs with an optional residual add; inside C2f/C3k2/C3k."),
    (_BLOCK, "C2f", "YOLOv8 CSP block: split, n Bottlenecks, concatenate, fuse."),
    (_BLOCK, "C3k2", "YOLO11 CSP block: C2f whose inner blocks are Bottlenecks or C3k."),
    (_BLOCK, "C3k", "YOLO11 inner CSP block (C3 with k x k Bottlenecks)."),
    (_BLOCK, "SPPF", "Spatial pyramid pooling: repeated 5x5 max-pools, concatenated."),
    (_BLOCK, "C2PSA", "YOLO11 attention stage: split, n PSABlocks, concatenate, fuse."),
    (_BLOCK, "PSABlock", "Attention + feed-forward Convs with residual adds, inside C2PSA."),
    (
        _BLOCK,
        "Attention",
        "Multi-head self-attention over the feature map (Convs for qkv/proj/pe).",
    ),
    (_BLOCK, "DFL", "Distribution focal loss integral: a fixed 1x1 conv over softmax bins."),
    (
        "ultralytics.nn.modules.head",
        "Pose",
        "The pose head: box (DFL), class and keypoint branches per stride, stride and kpt_shape.",
    ),
    ("torch.nn.modules.conv", "Conv2d", "torch's own convolution, rebuilt as itself."),
    ("torch.nn.modules.batchnorm", "BatchNorm2d", "torch's own batch norm, rebuilt as itself."),
    ("torch.nn.modules.activation", "SiLU", "torch's own SiLU activation (Conv's default)."),
    ("torch.nn.modules.linear", "Identity", "torch's Identity: Conv(act=False)'s activation."),
    ("torch.nn.modules.container", "Sequential", "torch's Sequential: the layer list, branches."),
    ("torch.nn.modules.container", "ModuleList", "torch's ModuleList: head branches, C2f blocks."),
    ("torch.nn.modules.pooling", "MaxPool2d", "torch's max-pool, inside SPPF."),
    ("torch.nn.modules.upsampling", "Upsample", "torch's nearest upsampling in the neck."),
]

ENTRIES: tuple[Allowed, ...] = (
    *(Allowed(module, name, "module", why) for module, name, why in _MODULES),
    Allowed(
        "torch",
        "Size",
        "call",
        "A trained model's Pose head caches the last feature-map shape (Detect.shape, a "
        "torch.Size) from the trainer's validation; only torch.Size((int, ...)) is accepted.",
    ),
    Allowed(
        "builtins",
        "set",
        "call",
        "Every nn.Module keeps _non_persistent_buffers_set, pickled (protocol 2) as "
        "set([names]); only set() or set([str | int, ...]) is accepted.",
    ),
)

# The names the adapter rebuilds as its own classes; the scanner and the loader share the list.
ULTRALYTICS_CLASSES: tuple[str, ...] = tuple(
    e.full for e in ENTRIES if e.role == "module" and e.module.startswith("ultralytics.")
)
TORCH_CLASSES: tuple[str, ...] = tuple(
    e.full for e in ENTRIES if e.role == "module" and e.module.startswith("torch.")
)
