#!/usr/bin/env bash
# Session 26, issue #2: session 25c's timing (ours+fusedGN+compile in channels_last_3d against
# ours+compile contiguous, batch 8) and, in the same call, a profile of the channels_last_3d compiled
# training step with the operators that own the most device time (--ops), to see whether the eager
# aten::copy_ from CompiledFunctionBackward is gone with UpBlock3D's layout fix (9fe35f9). ~7 min.
#   bash scripts/gpu_session26a.sh $OUT          (carry .whl)
source "$(dirname "$0")/device_preamble.sh" "$@"
bash scripts/gpu_session25c.sh "$OUT/timing"
timeout 220 python3 benchmarks/profile_gpu.py --out "$OUT/profile" --variant ours+fusedGN+compile \
  --channels-last yes --train-batch 8 --modes train --ops 20 2>&1 | quiet | tail -n 60
date -u
