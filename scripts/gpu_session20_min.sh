#!/usr/bin/env bash
# Session 20 (issue #2), the smallest call: the swap Gluon backward's GPU tests, one paper-size
# scan's forward + backward with sum / swap / swap-atomic, and the paper network's eager training
# step (bf16, batch 2, walked route) with sum and with swap. ~3 min.
#   bash scripts/gpu_session20_min.sh $OUT
source "$(dirname "$0")/device_preamble.sh" "$@"
quiet() { grep -v "^USDT\|profiler_st"; }
MEDSEGMAMBA_TRITON_BWD_GLUON_KERNEL=swap timeout 75 python3 -m pytest -q -p no:cacheprovider -m gpu \
  Testing/ops/test_scan_along_paths.py Testing/ops/test_scan_triton.py -k "gluon_backward or walked_gradients" 2>&1 \
  | grep -v "^E  *[+ ]" | tail -n 12
timeout 50 python3 benchmarks/scan_bwd_gluon.py --out "$OUT/scan_bwd" --kernels sum swap swap-atomic 2>&1 | tail -n 3
for k in sum swap; do
  MEDSEGMAMBA_TRITON_BWD_GLUON_KERNEL=$k timeout 60 python3 benchmarks/model_gpu.py --out "$OUT/train_$k" \
    --variants ours+fusedGN --no-channels-last --batches :2 2>&1 | quiet | grep "| train\|Error" | sed "s/^/$k /"
done
date -u
