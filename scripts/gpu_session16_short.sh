#!/usr/bin/env bash
# Session 16 (issue #2), the short form of gpu_session16.sh for a call with ~6 minutes: the path
# scan alone (accuracy, time), the paper network eager in NCDHW memory (walked and gathered; bf16
# and fp32, batch 1 and 8), then a profile of the compiled walked network at batch 8. ~5 min.
#   bash scripts/gpu_session16_short.sh $OUT
source "$(dirname "$0")/device_preamble.sh" "$@"
quiet() { grep -v "^USDT\|profiler_st"; }
python3 benchmarks/scan_paths_gpu.py --out "$OUT/scan_paths" 2>&1 | tail -n 12
python3 benchmarks/model_gpu.py --out "$OUT/model_eager" --variants ours+fusedGN ours+fusedGN+gathered \
  --no-channels-last --batches 1,8: 2>&1 | quiet | tail -n 12
python3 benchmarks/profile_gpu.py --out "$OUT/profile_compiled" --variant ours+compile --channels-last no \
  --modes infer 2>&1 | quiet | grep -A 12 "^## "
date -u
