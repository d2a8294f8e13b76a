#!/usr/bin/env bash
# Session 16 (issue #2), the least of gpu_session16.sh, for a call with ~3 minutes: the path scan
# alone (accuracy, time) and the paper network eager in NCDHW memory, walked against gathered.
#   bash scripts/gpu_session16_min.sh $OUT
source "$(dirname "$0")/device_preamble.sh" "$@"
python3 benchmarks/scan_paths_gpu.py --out "$OUT/scan_paths" 2>&1 | tail -n 12
python3 benchmarks/model_gpu.py --out "$OUT/model_eager" --variants ours+fusedGN ours+fusedGN+gathered \
  --no-channels-last --batches 1,8: 2>&1 | grep -v "^USDT\|profiler_st" | tail -n 12
date -u
