#!/usr/bin/env bash
# Session 16: where the paper network's inference time goes once torch.compile has fused what it
# can (issue #2: 5 ms per patch), with the model and input in the default (NCDHW) and in
# channels_last_3d memory, and the eager network in channels_last_3d for comparison. ~6 min.
#   bash scripts/gpu_session16_profile.sh $OUT
source "$(dirname "$0")/device_preamble.sh" "$@"
python3 benchmarks/profile_gpu.py --out "$OUT/eager_cl" --variant ours+fusedGN --channels-last both --modes infer \
  2>&1 | grep -v "^USDT\|profiler_st" | tail -n 4
python3 benchmarks/profile_gpu.py --out "$OUT/compiled" --variant ours+compile --channels-last both --modes infer \
  2>&1 | grep -v "^USDT\|profiler_st" | tail -n 4
date -u
