#!/usr/bin/env bash
# Session 18, call 4 (issue #2): SS3D's fused depthwise convolution + SiLU under autograd
# ($MEDSEGMAMBA_DWCONV=triton) against cuDNN's (the default for training), the paper network's
# eager training step at batch 2, alternated twice on one machine; the kernels' GPU tests. ~4 min.
#   bash scripts/gpu_session18d.sh $OUT
source "$(dirname "$0")/device_preamble.sh" "$@"
quiet() { grep -v "^USDT\|profiler_st"; }
timeout 100 python3 -m pytest -q -p no:cacheprovider -m gpu Testing/ops/test_depthwise_conv.py 2>&1 | tail -n 8
for round in 1 2; do
  for route in torch triton; do
    MEDSEGMAMBA_DWCONV=$route timeout 90 python3 benchmarks/model_gpu.py --out "$OUT/train_${route}_$round" \
      --variants ours+fusedGN --no-channels-last --batches :2 2>&1 | quiet | grep "| train"
  done
done
date -u
