"""Which class rebuilds each allow-listed global, and the check of the rebuilt module tree.

``STAND_INS`` maps every module name on the reviewed list (``allowlist.ENTRIES``) to the object
the ``weights_only`` unpickler creates for it: the plugin's stand-in for ``ultralytics.*``,
torch's own class for ``torch.nn.*``. ``check_tree`` then walks the loaded model before anything
runs: every module must be one of those classes, forward's attributes must have their types,
and no attribute stored in the file may shadow a method (an instance ``forward`` would replace
the plugin's).
"""

from __future__ import annotations

from typing import Any

from torch import nn

from ...errors import AdapterError
from . import blocks, head
from .allowlist import TORCH_CLASSES, ULTRALYTICS_CLASSES

_OURS: tuple[type[blocks.StandIn], ...] = (
    head.PoseModel,
    head.Pose,
    blocks.Conv,
    blocks.DWConv,
    blocks.Concat,
    blocks.Bottleneck,
    blocks.C2f,
    blocks.C3k2,
    blocks.C3k,
    blocks.SPPF,
    blocks.C2PSA,
    blocks.PSABlock,
    blocks.Attention,
    blocks.DFL,
)

_TORCH: dict[str, type[nn.Module]] = {
    "torch.nn.modules.conv.Conv2d": nn.Conv2d,
    "torch.nn.modules.batchnorm.BatchNorm2d": nn.BatchNorm2d,
    "torch.nn.modules.activation.SiLU": nn.SiLU,
    "torch.nn.modules.linear.Identity": nn.Identity,
    "torch.nn.modules.container.Sequential": nn.Sequential,
    "torch.nn.modules.container.ModuleList": nn.ModuleList,
    "torch.nn.modules.pooling.MaxPool2d": nn.MaxPool2d,
    "torch.nn.modules.upsampling.Upsample": nn.Upsample,
}

STAND_INS: dict[str, Any] = {cls.ULTRALYTICS: cls for cls in _OURS} | _TORCH

if set(STAND_INS) != set(ULTRALYTICS_CLASSES) | set(TORCH_CLASSES):  # pragma: no cover
    raise ImportError("the Ultralytics stand-ins and the reviewed allow-list disagree")

_ALLOWED_TYPES = frozenset(STAND_INS.values())
# Ultralytics stores each layer's class name as ``m.type``, over ``nn.Module.type()``, which
# neither the plugin nor torch's ``float()``/``to()`` call.
_DATA_OVER_METHODS = frozenset({"type"})


def check_tree(root: nn.Module, where: str) -> None:
    """Refuse a loaded tree that forward could not run as written (names the module path)."""
    if not isinstance(root, head.PoseModel):
        raise AdapterError(
            f"{where}: the checkpoint's model is a {type(root).__name__}, not an Ultralytics "
            "PoseModel (only YOLOv8 / YOLO11 pose checkpoints are supported)"
        )
    for name, module in root.named_modules():
        path = f"{where}:model" + (f".{name}" if name else "")
        if type(module) not in _ALLOWED_TYPES:  # cannot happen after a weights_only load
            raise AdapterError(f"{path} is a {type(module).__name__}, not an allowed class")
        for key in module.__dict__:
            attr = getattr(type(module), key, None)
            if key not in _DATA_OVER_METHODS and (callable(attr) or isinstance(attr, property)):
                raise AdapterError(
                    f"{path} stores an attribute {key!r} that would replace the class's own "
                    f"{key!r}; refusing to run it"
                )
        if isinstance(module, blocks.StandIn):
            module.check(path)
