#!/usr/bin/env bash
# Session 24 wrote it; no machine was lent that session. Issue #2: what channels_last_3d costs in the
# compiled training step. Session 23 found it 46.4 against 41.1 ms of device time a patch (batch 8):
# cuDNN's layout transforms went (convolutions 12.1 -> 9.1 ms), but an eager copy
# (direct_copy_kernel_cuda, 3.4 ms) and an upsample + GroupNorm kernel with a layout clone (2.9 ms
# against 0.4) came in. The profile could not say which operator launched the copy. Since then the
# decoder's upsampling (layers.NearestUp2) writes channels_last_3d in that order (an expand and a
# reshape of the (B, D, H, W, C) array instead of a gather copied into the layout).
# 1. The same profile with --ops: the operators by their own kernels' time, each with the Python
#    frames (or the autograd node) that called it.
# 2. The eager network (the pipeline's path) at batch 8 in both layouts: inference and training.
# 3. Each convolution's forward + backward replayed alone in its own layout and in the other
#    (conv_layers_gpu.py --train --relayout): which ones lose the transforms, and at what price.
# ~8 min. Text reports in $OUT.
#   bash scripts/gpu_session24c.sh $OUT          (carry .whl)
source "$(dirname "$0")/device_preamble.sh" "$@"
timeout 240 python3 benchmarks/profile_gpu.py --out "$OUT/profile_train_compiled_cl" --variant ours+compile \
  --modes train --train-batch 8 --channels-last yes --top 40 --ops 20 2>&1 | quiet | grep "^## \|Error"
rm -f "$OUT/profile_train_compiled_cl/results.json"
grep -A 22 "| operator" "$OUT/profile_train_compiled_cl/results.md" | cut -c 1-400
date -u
timeout 150 python3 benchmarks/model_gpu.py --no-check --out "$OUT/eager_layouts" --variants ours+fusedGN \
  --batches 8:8 2>&1 | quiet | grep "| infer\|| train\|Error"
rm -f "$OUT/eager_layouts/results.json"
date -u
timeout 120 python3 benchmarks/conv_layers_gpu.py --out "$OUT/conv_train" --train --relayout --channels-last no \
  --no-explain 2>&1 | quiet | grep "^## "
rm -f "$OUT/conv_train/results.json"
date -u
