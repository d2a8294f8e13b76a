#!/usr/bin/env bash
# Session 21, call 1 (issue #2): session 20's Gluon backward (scan_gluon_bwd: per-step sums by
# register-lane swaps, no barrier between steps; swap and swap-atomic) against session 19's (sum),
# and the Gluon walk leaving the training checkpoints (walk-gluon-ckpt) against the chunked walk:
# their GPU tests; one paper-size scan's forward + backward with each backward; the paper network's
# eager training step (bf16, batch 2, walked route) with each (swap also at batch 8 and
# channels-last); the compiled step with swap at batch
# 2 and 8; then where the compiled step's time goes, if time is left. ~9 min.
#   bash scripts/gpu_session21.sh $OUT
# As run in session 21 (call 1, on commit 6a5d1f4); the swap kernels and
# $MEDSEGMAMBA_TRITON_BWD_GLUON_KERNEL were removed after it, so today every backward here is "sum".
source "$(dirname "$0")/device_preamble.sh" "$@"
quiet() { grep -v "^USDT\|profiler_st"; }
for k in sum swap; do
  MEDSEGMAMBA_TRITON_BWD_GLUON_KERNEL=$k timeout 120 python3 -m pytest -q -p no:cacheprovider -m gpu \
    Testing/ops/test_scan_along_paths.py Testing/ops/test_scan_triton.py -k "gluon or walked" 2>&1 \
    | grep -v "^E  *[+ ]" | tail -n 8 | sed "s/^/$k /"
done
timeout 150 python3 benchmarks/scan_bwd_gluon.py --out "$OUT/scan_bwd" --kernels sum swap swap-atomic \
  --launches default 4,4,2,4,128,4 4,4,2,4,128,16 4,4,2,4,0 2>&1 | tail -n 4
for run in chunked:sum auto:sum auto:swap-atomic auto:swap; do
  walk=${run%%:*} k=${run##*:} batches=:2 cl=--no-channels-last; [ $k = swap ] && batches=:2,8 cl=
  MEDSEGMAMBA_TRITON_WALK=$walk MEDSEGMAMBA_TRITON_BWD_GLUON_KERNEL=$k timeout 150 python3 benchmarks/model_gpu.py \
    --out "$OUT/train_${walk}_$k" --variants ours+fusedGN $cl --batches $batches 2>&1 | quiet \
    | grep "| train\|Error" | sed "s/^/$walk $k /"
done
date -u
MEDSEGMAMBA_TRITON_BWD_GLUON_KERNEL=swap timeout 200 python3 benchmarks/model_gpu.py --out "$OUT/train_compiled_swap" \
  --variants ours+compile --no-channels-last --batches :2,8 2>&1 | quiet | grep "| train\|Error" | head -n 5
date -u
MEDSEGMAMBA_TRITON_BWD_GLUON_KERNEL=swap timeout 150 python3 benchmarks/profile_gpu.py \
  --out "$OUT/profile_train_compiled" --variant ours+compile --modes train 2>&1 | quiet | tail -n 45
date -u
