#!/usr/bin/env bash
# Session 17 (issue #2), the short call (~5 min): the compiled network with inductor's channels-last
# layout forced on (its baseline, the default heuristic, is call 1's profile on the same kind of card),
# the scan backward with its states split over programs, each convolution alone (eager, the default
# layout) and the walked scan's launch configurations.
#   bash scripts/gpu_session17_short.sh $OUT
source "$(dirname "$0")/device_preamble.sh" "$@"
quiet() { grep -v "^USDT\|profiler_st"; }
timeout 150 python3 benchmarks/profile_gpu.py --out "$OUT/profile_ours+compile+forcecl" --variant ours+compile+forcecl \
  --channels-last no --modes infer 2>&1 | quiet | grep "^## "
timeout 80 python3 benchmarks/scan_bwd_split.py --out "$OUT/bwd_split" 2>&1 | tail -n 12
timeout 90 python3 benchmarks/conv_layers_gpu.py --out "$OUT/conv_layers" --channels-last no 2>&1 | quiet | grep "^## \|graphs\|^- "
timeout 60 python3 benchmarks/scan_paths_gpu.py --out "$OUT/scan_sweep" --sweep 2>&1 | tail -n 12
date -u
