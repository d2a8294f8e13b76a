#!/usr/bin/env bash
# Session 10, call 2: the scan's forward and forward + backward with channel-last inputs (views of
# (B, L, D) and (B, G, L, N) memory, as SS3D's projections make them) against L-contiguous ones,
# the "scan" and "lanes" backward bodies; paper size at batch 1 and 8, default model's at 16. ~2 min.
#   bash scripts/gpu_session10_layouts.sh $OUT          (carries nothing)
# Ran at tree 9ca6c8a, which still had the lanes body; from the next commit on, run it with
# --bodies scan only.
source "$(dirname "$0")/device_preamble.sh" "$@"
timeout 300 python3 benchmarks/scan_layouts.py --out "$OUT" --bodies scan,lanes 2>&1 | grep -v '^{' | tail -n 20
date -u
