"""Export a loaded torch detection model to the deployment formats compared by ``parity``:
ONNX (run by ONNX Runtime) and ``torch.export`` programs.

What works with torch 2.14 / torchvision 0.29 for torchvision's ``GeneralizedRCNN`` models
(Keypoint/Faster/Mask R-CNN), found by trying:

- **ONNX, TorchScript-based exporter** (``torch.onnx.export(..., dynamo=False)``, opset 17,
  deprecated since torch 2.9 but working): exports the whole detector, pre- and post-processing
  included, with dynamic image height/width (``dynamic_axes``). Input: one float CHW image in
  [0, 1]; outputs ``boxes, labels, scores, keypoints, keypoints_scores`` (torchvision's dict
  order). ONNX Runtime matches eager within 1e-4 px on boxes/keypoints and 1e-5 on scores on the
  tiny test model, at the export size and at other sizes.
- **ONNX, dynamo exporter** (``dynamo=True``, the default): fails — it traces with
  ``torch.export``, see below. Used first for models that are not ``GeneralizedRCNN``.
- **torch.export of the whole detector**: fails, with or without dynamic shapes, because the
  output sizes are data-dependent: ``batched_nms`` branches on ``boxes.numel()``, the box
  decoder on ``box_sum > 0``, ``MultiScaleRoIAlign`` on ``len(rois)``, and
  ``heatmaps_to_keypoints`` resizes each detection's heatmap to its own box size
  (``int(widths_ceil[i].item())``). ``draft_export`` "succeeds" only by specialising those
  values to the example's, which is wrong on any other image. A fixed image size does not help:
  the number and size of detections still depend on the pixels.
- **torch.export of the dense parts** (what ``export_program`` does for R-CNN models): the
  backbone (dynamic batch/height/width), the RPN head, the box head and predictor and the
  keypoint head and predictor (dynamic number of RoIs, 0 included) export cleanly; the
  data-dependent glue (anchors, proposal decoding, NMS, RoIAlign, heatmap decoding, resizing
  back) stays eager torchvision code. Predictions are bit-identical to eager on the CPU.
  Those programs are saved together in one ``.pt2`` archive, one program per submodule path
  (``adapters/pt2_archive.py``), which the ``exported`` format loads.
"""

from __future__ import annotations

import copy
import warnings
from pathlib import Path
from typing import Any

from ..adapters.onnx_export import export_graph, exporter_reason
from ..adapters.pt2_archive import FULL_PROGRAM
from ..errors import ExportUnavailable

ONNX_INPUT = "images"
ONNX_OUTPUTS = ("boxes", "labels", "scores", "keypoints", "keypoints_scores")
# Dense submodules of a torchvision GeneralizedRCNN exported on their own (when present).
RCNN_PARTS = (
    "backbone",
    "rpn.head",
    "roi_heads.box_head",
    "roi_heads.box_predictor",
    "roi_heads.keypoint_head",
    "roi_heads.keypoint_predictor",
    "roi_heads.mask_head",
    "roi_heads.mask_predictor",
)


def eager_module(model: Any):
    """The eager ``nn.Module`` behind a ``KeypointModel`` (or the module itself)."""
    import torch

    module = getattr(model, "module", model)
    if not isinstance(module, torch.nn.Module) or isinstance(module, torch.jit.ScriptModule):
        raise ExportUnavailable(
            f"{type(model).__name__}: exporting needs the eager torch nn.Module "
            "(state-dict or python formats), not TorchScript, ONNX or an exported program"
        )
    return module


def is_rcnn(module) -> bool:
    return all(hasattr(module, a) for a in ("transform", "backbone", "rpn", "roi_heads"))


# -- ONNX -----------------------------------------------------------------------------------------
def export_onnx(model: Any, path: str | Path, example_image, exporter: str = "auto") -> Path:
    """Write ``model`` (eager, on the CPU for export) as ONNX: input ``images`` (float CHW in
    [0, 1], dynamic height and width), outputs named as in ``ONNX_OUTPUTS`` (those the model
    returns). ``exporter``: ``legacy`` (TorchScript-based), ``dynamo``, or ``auto`` (legacy for
    torchvision R-CNN models, where dynamo cannot work, else dynamo then legacy)."""
    import torch

    module = eager_module(model)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    module = copy.deepcopy(module).cpu().eval()
    image = example_image.detach().float().cpu()
    with torch.no_grad():
        out = module([image])
    if isinstance(out, tuple):
        out = out[1]
    names = [k for k in ONNX_OUTPUTS if k in out[0]]
    if exporter == "auto":
        order = ["legacy"] if is_rcnn(module) else ["dynamo", "legacy"]
    elif exporter in ("legacy", "dynamo"):
        order = [exporter]
    else:
        raise ValueError(f"exporter must be auto, legacy or dynamo, got {exporter!r}")
    named = {"input_names": [ONNX_INPUT], "output_names": names}
    options = {
        "legacy": {**named, "dynamic_axes": {ONNX_INPUT: {1: "height", 2: "width"}}},
        "dynamo": named,
    }
    return export_graph(module, ([image],), path, [(kind, options[kind]) for kind in order])


# -- torch.export ------------------------------------------------------------------------------------
def export_program(model: Any, example_images: list, strategy: str = "auto") -> dict[str, Any]:
    """``{name: ExportedProgram}`` for ``model``: ``{"model": ep}`` for a whole-detector export
    (input: a list of CHW images, output: torchvision's list of dicts), or, for torchvision
    R-CNN models (``strategy="auto"`` or ``"parts"``), one program per dense submodule in
    ``RCNN_PARTS``, named by its path. ``example_images``: float CHW images in [0, 1]; two or
    more give the exporter a batch size that is not specialised to 1."""
    import torch

    module = eager_module(model)
    module = copy.deepcopy(module).cpu().eval()
    images = [im.detach().float().cpu() for im in example_images]
    if len(images) == 1:
        images = images * 2
    if strategy == "auto":
        strategy = "parts" if is_rcnn(module) else "full"
    if strategy == "full":
        try:
            with warnings.catch_warnings(), torch.no_grad():
                warnings.simplefilter("ignore")
                ep = torch.export.export(module, (images[:1],), strict=False)
        except Exception as exc:  # noqa: BLE001
            raise ExportUnavailable(f"torch.export failed: {exporter_reason(exc)}") from None
        return {FULL_PROGRAM: ep}
    if strategy != "parts":
        raise ValueError(f"strategy must be auto, full or parts, got {strategy!r}")
    if not is_rcnn(module):
        raise ExportUnavailable(
            "torch.export by parts needs a torchvision GeneralizedRCNN (transform, backbone, "
            "rpn, roi_heads)"
        )
    captured = _capture_inputs(module, images)
    programs = {}
    for name, args in captured.items():
        sub = module.get_submodule(name)
        try:
            with warnings.catch_warnings(), torch.no_grad():
                warnings.simplefilter("ignore")
                programs[name] = torch.export.export(
                    sub, args, dynamic_shapes=_dynamic_shapes(name, args), strict=False
                )
        except Exception as exc:  # noqa: BLE001
            raise ExportUnavailable(
                f"torch.export of {name} failed: {exporter_reason(exc)}"
            ) from None
    return programs


def _capture_inputs(module, images: list) -> dict[str, tuple]:
    """Positional inputs of each dense part during one eager forward, with a leading size of
    at least 2 (sizes 0 and 1 would be specialised by the exporter)."""
    import torch

    captured: dict[str, tuple] = {}
    handles = []
    for name in RCNN_PARTS:
        try:
            sub = module.get_submodule(name)
        except AttributeError:
            continue
        if sub is None:
            continue

        def hook(_m, args, name=name):
            captured.setdefault(name, args)

        handles.append(sub.register_forward_pre_hook(hook))
    try:
        with torch.no_grad():
            module(images)
    finally:
        for h in handles:
            h.remove()
    return {name: tuple(_at_least_two(a) for a in args) for name, args in captured.items()}


def _at_least_two(x):
    import torch

    if isinstance(x, list | tuple):
        return type(x)(_at_least_two(v) for v in x)
    if not torch.is_tensor(x):
        return x
    x = x.detach().clone()
    if x.dim() == 0 or x.shape[0] >= 2:
        return x
    if x.shape[0] == 0:
        return torch.zeros((2, *x.shape[1:]), dtype=x.dtype)
    return torch.cat([x, x])[:2]


def _dynamic_shapes(name: str, args: tuple):
    from torch.export import Dim

    if name == "backbone":
        batch = Dim("batch", min=1)
        return ({0: batch, 2: Dim.AUTO, 3: Dim.AUTO},)
    if name == "rpn.head":
        batch = Dim("batch", min=1)
        return ([{0: batch, 2: Dim.AUTO, 3: Dim.AUTO} for _ in args[0]],)
    rois = Dim("rois", min=0)
    return tuple({0: rois} for _ in args)
