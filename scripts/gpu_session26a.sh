#!/usr/bin/env bash
# Session 26, issue #2: session 25c's timing, ours+fusedGN+compile in channels_last_3d against ours+compile
# contiguous at batch 8, with ours+fusedGN+compile contiguous too (the fused GroupNorm compiled on its own), and,
# in the same call, a profile of the channels_last_3d compiled
# training step with the operators that own the most device time (--ops), to see whether the eager
# aten::copy_ from CompiledFunctionBackward is gone with UpBlock3D's layout fix (9fe35f9). ~8 min.
#   bash scripts/gpu_session26a.sh $OUT          (carry .whl)
source "$(dirname "$0")/device_preamble.sh" "$@"
timeout 260 python3 benchmarks/model_gpu.py --no-check --out "$OUT/a" --variants ours+fusedGN+compile \
  --batches :8 2>&1 | quiet | grep "| train\|Error"
date -u
timeout 150 python3 benchmarks/model_gpu.py --no-check --out "$OUT/b" --variants ours+compile \
  --no-channels-last --batches :8 2>&1 | quiet | grep "| train\|Error"
rm -rf "$OUT/a" "$OUT/b"
date -u
timeout 220 python3 benchmarks/profile_gpu.py --out "$OUT/profile" --variant ours+fusedGN+compile \
  --channels-last yes --train-batch 8 --modes train --ops 20 2>&1 | quiet | tail -n 60
date -u
