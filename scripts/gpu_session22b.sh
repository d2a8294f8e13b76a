#!/usr/bin/env bash
# Session 22, call 2 (issue #2): the new defaults (the Gluon backward adds dB and dC atomically;
# training's "auto" walk is the Gluon one where each multiprocessor gets 4 programs: batch 8 on an
# H100, not 4) measured as they ship: the paper network's eager training step at batches 4 and 8
# with the correctness check; the compiled step at batch 8 (no checks); where the compiled step's
# time goes at batch 8. ~9 min.
#   bash scripts/gpu_session22b.sh $OUT
source "$(dirname "$0")/device_preamble.sh" "$@"
timeout 130 python3 benchmarks/model_gpu.py --out "$OUT/train_eager" --variants ours+fusedGN --no-channels-last \
  --batches :4,8 2>&1 | quiet | grep "| train\|Error\|correctness"
date -u
timeout 200 python3 benchmarks/model_gpu.py --out "$OUT/train_compiled" --variants ours+compile --no-channels-last \
  --batches :8 --no-check 2>&1 | quiet | grep "| train\|Error" | head -n 5
date -u
timeout 240 python3 benchmarks/profile_gpu.py --out "$OUT/profile_train_compiled" --variant ours+compile \
  --modes train --train-batch 8 2>&1 | quiet | tail -n 45
date -u
