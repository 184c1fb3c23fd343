"""Batched torch kernels behind every perturbation kind, one module per group of kinds.

Each kernel takes a ``[B, C, H, W]`` float batch in [0, 1] on any device plus the kind's
parameter dict and a :class:`.context.Ctx`, and returns a batch of the same shape (geometric
kernels also return the coordinate map). Images of different sizes are grouped by size by
:func:`.apply.apply_kind`; random numbers come from one ``torch.Generator`` per image (see
:class:`.context.Rng`), so a batch equals its images processed one by one.

* :mod:`.apply` - ``apply_kind`` and the ``KERNELS`` table (kind name -> kernel);
* :mod:`.context` - per-image random streams and what else a kernel is given;
* :mod:`.filters` - padding, FFT and separable convolution, Gaussian, disk and motion kernels;
* :mod:`.textures` - plasma fractal and frost texture;
* :mod:`.photometric`, :mod:`.noise`, :mod:`.blur`, :mod:`.digital`, :mod:`.weather`,
  :mod:`.occlusion`, :mod:`.geometric` - the kernels, grouped as in :mod:`..kinds`.

The kernels import torch (and numpy/PIL where a reference needs them), :mod:`..geometry` and
:mod:`..kinds` (pure data: the severities a sweep applies); nothing else of the project. This
``__init__`` imports nothing.
"""
