#!/usr/bin/env bash
# Session 20 (issue #2), the short call for a small budget: the swap Gluon backward's GPU tests,
# one paper-size scan's forward + backward with sum / swap / swap-atomic (sub-chunks of 8, 4, 16), and the paper network's
# eager training step (bf16, batch 2, walked route) with sum and with swap. ~4 min.
#   bash scripts/gpu_session20_short.sh $OUT
source "$(dirname "$0")/device_preamble.sh" "$@"
quiet() { grep -v "^USDT\|profiler_st"; }
MEDSEGMAMBA_TRITON_BWD_GLUON_KERNEL=swap timeout 120 python3 -m pytest -q -p no:cacheprovider -m gpu \
  Testing/ops/test_scan_along_paths.py Testing/ops/test_scan_triton.py -k "gluon or walked" 2>&1 \
  | grep -v "^E  *[+ ]" | tail -n 12
timeout 150 python3 benchmarks/scan_bwd_gluon.py --out "$OUT/scan_bwd" --kernels sum swap swap-atomic \
  --launches default 4,4,2,4,128,4 4,4,2,4,128,16 2>&1 | tail -n 4
for k in sum swap; do
  MEDSEGMAMBA_TRITON_BWD_GLUON_KERNEL=$k timeout 90 python3 benchmarks/model_gpu.py --out "$OUT/train_$k" \
    --variants ours+fusedGN --no-channels-last --batches :2 2>&1 | quiet | grep "| train\|Error" | sed "s/^/$k /"
done
date -u
