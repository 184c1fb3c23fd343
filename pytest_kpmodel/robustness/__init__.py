"""Robustness checks: perturbations, the corruption suite, stability and a data-poisoning probe.

Modules (import them directly; this package imports nothing, so importing it never pulls torch):

- ``kinds``: the registry of perturbation kinds, their severity tables and free parameters,
  ``params_for`` (data and pure Python).
- ``perturbations``: the ``Perturbation`` dataclass, ``Compose``, and ``Perturbed`` (images +
  transformed targets/predictions + the exact inverse for geometric kinds). Torch-free at
  import time.
- ``ops``: the batched torch kernels behind every kind (noise, blur, weather, digital ...).
- ``geometry``: affine maps of boxes and keypoints (pixel-centre convention, left/right swap).
- ``corruptions``: the 15 ImageNet-C / COCO-C corruptions at severities 1-5.
- ``oks``: OKS between keypoint sets and greedy OKS matching.
- ``stability``: ``measure()`` predictions under a perturbation against the clean ones.
- ``corruption_eval``: ``run()`` the corruption sweep; mPC and rPC.
- ``trigger``: ``scan()`` for a patch trigger (data-poisoning probe) with hypothesis.
- ``draw``: clean vs perturbed renderings with skeletons.
- ``probes``: the run's probes (stability, flip consistency, corruption sweep, trigger scan)
  bound to the session's model, data and settings.

A feature package: it may import ``adapters.base`` (the ``Prediction``/``KeypointModel``
interface), ``keypoints``, ``data`` and ``predictions`` (the probes' images and predictions),
``metrics`` (OKS, evaluation), ``distributed.sweep`` (the corruption sweep across torchrun
ranks), ``marker_args`` and ``errors``; never pytest, the session (``probes`` is handed it) or
the plugin.
"""
