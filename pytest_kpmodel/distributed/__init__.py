"""Scale-out: torchrun (multi-GPU, multi-node) and pytest-xdist.

**torchrun.** ``torchrun --nproc_per_node=N -m pytest --kp-model=... specs/`` starts N pytest
processes, each collecting and running the same tests. The run's ``KpSession`` holds one
``process_group.Group`` (``session.dist``), which

- reads the torchrun environment and gives each rank its own device (``environment``:
  ``detect``, ``rank_device``: ``cuda:LOCAL_RANK``);
- joins the process group lazily, at the first collective, and leaves it at the end of the run
  (``process_group``);
- shards the evaluation set by whole batches of the global order, so every prediction is the
  one-process prediction, and gives every rank the full ``PredictionSet`` (``sharding``); the
  predictions travel as safetensors bytes, no pickle, dtypes kept (``wire``);
- evaluates once, on rank 0, and broadcasts the metrics (``Group.on_main``), so every rank's
  gates agree; the corruption sweep is sharded the same way (``sweep``);
- keeps the prediction cache's key unchanged: rank 0 reads and writes the entry under a file
  lock and broadcasts a hit (``cache``).

Every rank must run the same collectives in the same order, which holds when every rank runs the
same tests in the same order (the default: same command, same files); ranks that drift apart
fail with a message naming both steps instead of hanging.

**pytest-xdist.** ``pytest -n N`` runs session fixtures once per worker; the prediction cache's
entry is computed by one worker while the others wait on its lock and then read it
(``cache.cache_lock``); with several GPUs visible, worker ``gwK`` uses ``cuda:K % count``;
workers send their checks and report sections to the controller, which writes the one report,
and speed tests skip with the reason (``xdist``).

Modules: import them directly; this package imports nothing, so importing it never pulls torch
(torch is imported inside functions only). May import: ``errors``, ``settings`` (the device
request), ``adapters.base`` (``Prediction``), ``data`` and ``predictions``. Never pytest,
``session``, ``plugin`` or a feature package: robustness imports this package (the sharded
sweep), so it sits below them all; the xdist worker's security section is added by the plugin
before ``xdist.worker_output`` sends the sections.
"""
