#!/usr/bin/env bash
# Session 17 (issue #2): where the compiled network's cuDNN layout transforms come from (each
# convolution alone, eager, both memory layouts; dynamo's graph count), the compiled network with
# inductor's channels-last layout forced on against the default heuristic (same machine), the
# walked scan's launch configurations, the scan backward with its states split over programs (~6 min); with TRAIN=1, the forced layout's training step too (~7 min).
#   bash scripts/gpu_session17.sh $OUT
source "$(dirname "$0")/device_preamble.sh" "$@"
quiet() { grep -v "^USDT\|profiler_st"; }
timeout 120 python3 benchmarks/conv_layers_gpu.py --out "$OUT/conv_layers" 2>&1 | quiet | grep "^## \|graphs\|^- "
for v in ours+compile+forcecl ours+compile; do
  timeout 150 python3 benchmarks/profile_gpu.py --out "$OUT/profile_$v" --variant $v --channels-last no \
    --modes infer 2>&1 | quiet | grep "^## "
done
timeout 90 python3 benchmarks/scan_paths_gpu.py --out "$OUT/scan_sweep" --sweep 2>&1 | tail -n 12
timeout 90 python3 benchmarks/scan_bwd_split.py --out "$OUT/bwd_split" 2>&1 | tail -n 16
[ "${TRAIN:-0}" = 1 ] && timeout 150 python3 benchmarks/profile_gpu.py --out "$OUT/profile_train_forcecl" --variant ours+compile+forcecl \
  --channels-last no --modes train 2>&1 | quiet | grep "^## "
date -u
