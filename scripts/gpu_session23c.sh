#!/usr/bin/env bash
# Session 23, call 4 (issue #2): the new default ($MEDSEGMAMBA_TRITON_BWD_DELTA=auto: delta's
# softplus in the Gluon backward when eager, around it under torch.compile) as it ships: the GPU
# tests of the walked route and the paper network's eager training step at batch 8; then each
# convolution's forward + backward replayed alone in both layouts (which ones pay cuDNN's layout
# transforms in training). ~4 min.
#   bash scripts/gpu_session23c.sh $OUT
source "$(dirname "$0")/device_preamble.sh" "$@"
timeout 100 python3 -m pytest -q -p no:cacheprovider -m gpu Testing/ops/test_scan_along_paths.py 2>&1 | tail -n 3
timeout 90 python3 benchmarks/model_gpu.py --no-check --out "$OUT/train_eager" --variants ours+fusedGN \
  --no-channels-last --batches :8 2>&1 | quiet | grep "| train\|Error"
date -u
timeout 110 python3 benchmarks/conv_layers_gpu.py --out "$OUT/conv_layers_train" --train --relayout --channels-last no \
  --no-explain 2>&1 | quiet | grep "^## "
date -u
