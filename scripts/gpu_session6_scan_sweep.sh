#!/usr/bin/env bash
# Session 6: the chunked scan forward at the paper's size (8 x 1024 channels, N 64, L 1728, batch 1)
# over launch settings that session 2's sweep left out (one warp; 4-8 channels), against the default
# (16 channels, T 4, 2 warps: 0.51 ms in fp32, the target 0.5 ms). ~2 min; carries nothing.
#   bash scripts/gpu_session6_scan_sweep.sh $OUT
source "$(dirname "$0")/device_preamble.sh" "$@"
python3 benchmarks/scan_gpu.py --out "$OUT" --parts sweep \
  --fwd-sweep "16,4,2 8,4,1 16,2,1 8,8,2 4,8,1 16,2,2 8,4,2 16,8,2 4,4,1 8,2,1 32,2,2 8,8,1 16,4,2" 2>&1 | tail -n 32
date -u
