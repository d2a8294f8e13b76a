#!/usr/bin/env bash
# Session 22, call 1 (issue #2): the Gluon backward adding dB and dC atomically into one tensor
# ($MEDSEGMAMBA_TRITON_BC=atomic) instead of a slice per channel block summed after it: its GPU tests;
# one paper-size scan's forward + backward with each; the paper network's eager training step at
# batch 8 with the chunked walk ("auto" in training) and with the Gluon walk leaving the checkpoints,
# each with both sums; then the compiled step at batch 8 (no correctness checks) with the default
# and, if time is left, where its time goes. ~9 min.
#   bash scripts/gpu_session22.sh $OUT
source "$(dirname "$0")/device_preamble.sh" "$@"
quiet() { grep -v "^USDT\|profiler_st"; }
MEDSEGMAMBA_TRITON_BC=atomic timeout 100 python3 -m pytest -q -p no:cacheprovider -m gpu \
  Testing/ops/test_scan_along_paths.py Testing/ops/test_scan_triton.py -k "gluon or walked" 2>&1 \
  | grep -v "^E  *[+ ]" | tail -n 8
timeout 60 python3 benchmarks/scan_bwd_gluon.py --out "$OUT/scan_bwd" --bc partial atomic 2>&1 | tail -n 3
for run in chunked:partial gluon:partial chunked:atomic gluon:atomic; do
  walk=${run%%:*} bc=${run##*:}
  MEDSEGMAMBA_TRITON_WALK=$walk MEDSEGMAMBA_TRITON_BC=$bc timeout 90 python3 benchmarks/model_gpu.py --no-check \
    --out "$OUT/train_${walk}_$bc" --variants ours+fusedGN --no-channels-last --batches :8 2>&1 | quiet \
    | grep "| train\|Error" | sed "s/^/$walk $bc /"
done
date -u
timeout 200 python3 benchmarks/model_gpu.py --out "$OUT/train_compiled" --variants ours+compile --no-channels-last \
  --batches :8 --no-check 2>&1 | quiet | grep "| train\|Error" | head -n 5
date -u
timeout 100 python3 benchmarks/profile_gpu.py --out "$OUT/profile_train_compiled" --variant ours+compile \
  --modes train 2>&1 | quiet | tail -n 45
date -u
