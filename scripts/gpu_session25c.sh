#!/usr/bin/env bash
# Session 25, issue #2: the compiled training step in channels_last_3d with the upsampling's layout
# taken from its convolution's weights (UpBlock3D; session 25's profile found F.interpolate's gather
# still compiled in, the traced activations' strides having said contiguous) and with the fused
# GroupNorm, whose output keeps its input's layout (the compiled F.group_norm's kernels hold a layout clone).
# Batch 8, bf16, median of 10 steps: ours+fusedGN+compile in channels_last_3d against ours+compile (the
# default, contiguous). ~4 min.
#   bash scripts/gpu_session25c.sh $OUT          (carry .whl)
source "$(dirname "$0")/device_preamble.sh" "$@"
timeout 150 python3 benchmarks/model_gpu.py --no-check --out "$OUT/a" --variants ours+fusedGN+compile \
  --only-channels-last --batches :8 2>&1 | quiet | grep "| train\|Error"
date -u
timeout 150 python3 benchmarks/model_gpu.py --no-check --out "$OUT/b" --variants ours+compile \
  --no-channels-last --batches :8 2>&1 | quiet | grep "| train\|Error"
rm -rf "$OUT/a" "$OUT/b"
date -u
