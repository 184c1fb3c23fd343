"""Speed, memory and deployment parity of a ``KeypointModel``: what ``kp_bench``, ``kp_parity``
and the speed keys of ``kp_thresholds`` / ``kp_claims`` measure.

Modules (import them directly; this package imports nothing, so importing it never pulls torch):

- ``settings``: ``BenchSettings``, the validated ``kp_bench(...)`` settings, and ``BenchError``.
- ``measure``: ``measure(model, dataset, settings, benchmark=None) -> BenchResult`` on fixed real
  images: warm-up, the timed loop (its own or pytest-benchmark's ``pedantic``), memory, stages.
- ``result``: ``BenchResult``, the report's ``bench`` entry and the terminal line.
- ``timing``: latency statistics and the synchronised timing loop (testable with a fake clock).
- ``memory``: CUDA allocator peaks, NVML usage, the CPU resident-set peak.
- ``stages``: per-stage milliseconds of torchvision R-CNN models.
- ``precision``: ``with_precision`` (autocast views; family adapters switch themselves) and
  ``BenchUnavailable``, the reason a benchmark cannot run here.
- ``thresholds``: the speed gates (``fps``, ``latency_p50_ms``, ``latency_p90_ms``,
  ``vram_mib``) and the values they read.
- ``machine``: device and machine names for the report and pytest-benchmark's machine info.
- ``load``: how busy the machine was during a timed region (runnable threads against the
  cores, other processes' CPU, steal, other GPU processes), and the "machine busy" sentence.
- ``relative``: ``kp_no_regression(fps=...)``'s candidate-vs-baseline timing in alternating
  rounds, gated on the median throughput ratio with its spread.
- ``export``: ONNX and ``torch.export`` exports of eager torch models.
- ``parity``: each precision and export of the model, speed and accuracy side by side,
  agreement with fp32 by OKS; ``parity_table``: the resulting table.

May import: ``errors``, ``findings``, ``marker_args`` (the kp_parity tests' one timing),
``adapters`` (loading exported files, the ``.pt2`` archive, the ONNX exporter), ``data``, ``keypoints``, ``predictions``, the OKS formula (from
``metrics`` or ``robustness``) and ``security.guarded_model`` (a guarded model's variants run
under the same guard). Never pytest, ``session`` or ``plugin``; torch only inside functions.
"""
