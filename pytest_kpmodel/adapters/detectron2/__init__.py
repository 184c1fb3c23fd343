"""The detectron2 keypoint R-CNN family (``format = "detectron2"``), without detectron2.

A card names a model-zoo config and the keys that differ from it::

    [model]
    format = "detectron2"
    weights = "model_final.pkl"            # or a Checkpointer .pth
    architecture = "detectron2:keypoint_rcnn_R_50_FPN_3x"
    [model.kwargs]
    "MODEL.RESNETS.DEPTH" = 18

Modules: ``config_defaults`` (the zoo configs as data), ``config`` (validation), ``checkpoint``
and ``c2_names`` (reading detectron2's two checkpoint layouts), ``layers``, ``backbone``,
``rpn``, ``boxes``, ``pooler``, ``roi_heads``, ``keypoint_head``, ``model`` (the network, in
torch/torchvision ops), ``preprocess`` (DefaultPredictor's resize, normalisation and
postprocessing) and ``adapter`` (the ``KeypointModel``). Importing the package (or ``config``)
does not import torch.
"""

from __future__ import annotations


def load(card, options):
    from .adapter import load as _load

    return _load(card, options)


__all__ = ["load"]
