#!/usr/bin/env bash
# The CUDA paths, checked on a GPU in under 5 minutes (issue 18). NOT RUN ON A GPU YET: no GPU
# was lent to the session that wrote it; `bash -n` and the paths it calls were checked on a CPU
# machine (the steps then stop at "no CUDA device").
#
#   benchmarks/gpu_check.sh            # from the repository root, after `make setup`
#   PYTHON=/path/to/python OUT=dir benchmarks/gpu_check.sh
#
# Steps, each under its own time limit (the limits add up to 280 s), each log in $OUT/:
#   1. gpu                 the device torch sees (name, capability, memory); stops here if none
#   2. example-suite-fp16  the example suite on cuda in fp16 (kp-tiny-mod): accuracy, robustness,
#                          the speed gates, the VRAM gate (kp_thresholds(vram_mib=1024) must
#                          run, not skip) and kp_parity's table (fp16 is a real row on a GPU)
#   3. timing-fidelity     bench.measure vs torch.utils.benchmark.Timer on cuda (within 3%)
#   4. timing-cuda-events  bench.measure vs CUDA events around the same calls (within 3%)
#   5. eval-pipeline       the plugin's prediction path vs a bare loop on cuda (>= 0.9)
#   6. parity-r50          kp_parity on a keypoint R-CNN R50-FPN at 800x1333, 3 images
# The exit status is 0 only when every step passed; a summary with each step's status and time
# is printed last (and written to $OUT/summary.txt).
set -u -o pipefail

cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
OUT=${OUT:-gpu-check}
CARD=example_suite/models/kp-tiny-mod/kpmodel.toml
mkdir -p "$OUT"
: >"$OUT/summary.txt"
failed=0

step() {  # step NAME LIMIT_S COMMAND...: run it, log it, print its tail and its status
    local name=$1 limit=$2
    shift 2
    echo "== $name (at most ${limit} s): $*"
    local start=$SECONDS
    timeout --kill-after=10 "$limit" "$@" >"$OUT/$name.log" 2>&1
    local rc=$?
    local took=$((SECONDS - start))
    tail -n 30 "$OUT/$name.log"
    local verdict=ok
    if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then verdict="TIMED OUT"; elif [ "$rc" -ne 0 ]; then verdict="FAILED (rc $rc)"; fi
    [ "$verdict" = ok ] || failed=1
    printf '%-20s %-16s %4d s\n' "$name" "$verdict" "$took" | tee -a "$OUT/summary.txt"
    return "$rc"
}

if ! step gpu 60 "$PY" -c '
import sys, torch
if not torch.cuda.is_available():
    sys.exit("no CUDA device: torch " + torch.__version__ + " sees none")
p = torch.cuda.get_device_properties(0)
print(f"{p.name}, capability {p.major}.{p.minor}, {p.total_memory / 2**30:.0f} GiB; torch "
      f"{torch.__version__}, CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}")
'; then
    echo "no GPU: nothing else to check"
    exit 1
fi

step example-suite-fp16 110 "$PY" -m pytest example_suite -p no:cacheprovider -v -rs \
    --kp-model="$CARD" --kp-device=cuda --kp-precision=fp16 \
    --kp-report="$OUT/report" --benchmark-json="$OUT/bench.json"
# The VRAM gate must have been evaluated on the GPU, not skipped for want of one.
if ! grep -q "test_fits_in_gpu_memory PASSED" "$OUT/example-suite-fp16.log"; then
    echo "the VRAM gate (example_suite/test_speed.py::test_fits_in_gpu_memory) did not pass"
    printf '%-20s %-16s\n' "vram-gate" "NOT PASSED" | tee -a "$OUT/summary.txt"
    failed=1
fi

step timing-fidelity 40 "$PY" benchmarks/timing_fidelity.py --device cuda --rounds 5 --iters 30
step timing-cuda-events 30 "$PY" benchmarks/timing_cuda_events.py --rounds 5 --iters 30
step eval-pipeline 40 "$PY" benchmarks/eval_pipeline.py --device cuda --max-images 100 --repeats 2
step parity-r50 60 "$PY" benchmarks/parity_bounded.py --device cuda --images 3 \
    --image-size 800 1333

echo
echo "== summary ($OUT/summary.txt)"
cat "$OUT/summary.txt"
exit "$failed"
