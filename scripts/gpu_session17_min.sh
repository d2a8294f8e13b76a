#!/usr/bin/env bash
# Session 17 (issue #2), the shortest call (~2.5 min): the scan backward with its states split over
# programs, and each convolution alone (eager, both memory layouts) with dynamo's graph count.
#   bash scripts/gpu_session17_min.sh $OUT
source "$(dirname "$0")/device_preamble.sh" "$@"
quiet() { grep -v "^USDT\|profiler_st"; }
timeout 70 python3 benchmarks/scan_bwd_split.py --out "$OUT/bwd_split" 2>&1 | tail -n 12
timeout 80 python3 benchmarks/conv_layers_gpu.py --out "$OUT/conv_layers" 2>&1 | quiet | grep "^## \|graphs\|^- "
date -u
