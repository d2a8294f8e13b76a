#!/usr/bin/env bash
# Session 22 (issue #2), when too little device time is left for gpu_session22.sh: the atomic dB/dC
# sums' GPU tests on the walked route, one paper-size scan's forward + backward with partial and
# atomic sums, and the compiled training step at batch 8 (no correctness checks). ~5 min.
#   bash scripts/gpu_session22_short.sh $OUT
source "$(dirname "$0")/device_preamble.sh" "$@"
quiet() { grep -v "^USDT\|profiler_st"; }
MEDSEGMAMBA_TRITON_BC=atomic timeout 60 python3 -m pytest -q -p no:cacheprovider -m gpu \
  Testing/ops/test_scan_along_paths.py -k "walked_gradients" 2>&1 | grep -v "^E  *[+ ]" | tail -n 6
timeout 60 python3 benchmarks/scan_bwd_gluon.py --out "$OUT/scan_bwd" --bc partial atomic 2>&1 | tail -n 3
date -u
timeout 200 python3 benchmarks/model_gpu.py --out "$OUT/train_compiled" --variants ours+compile --no-channels-last \
  --batches :8 --no-check 2>&1 | quiet | grep "| train\|Error" | head -n 5
date -u
