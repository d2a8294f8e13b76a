#!/usr/bin/env bash
# Session 19, call 5 (issue #2): the Gluon backward's launch as a custom op (torch.compile traced
# into it and failed in call 4): GPU tests of both routes; the paper network's training step
# compiled and eager on the walked route (the defaults), eager gathered. ~4 min.
#   bash scripts/gpu_session19e.sh $OUT
source "$(dirname "$0")/device_preamble.sh" "$@"
quiet() { grep -v "^USDT\|profiler_st"; }
timeout 120 python3 -m pytest -q -p no:cacheprovider -m gpu Testing/ops/test_scan_along_paths.py \
  Testing/ops/test_scan_triton.py -k "gluon or walked" 2>&1 | grep -v "^E  *[+ ]" | tail -n 15
timeout 240 python3 benchmarks/model_gpu.py --out "$OUT/train_compiled" --variants ours+compile \
  --no-channels-last --batches :2 2>&1 | quiet | grep "| train\|Error" | head -n 5
timeout 100 python3 benchmarks/model_gpu.py --out "$OUT/train" --variants ours+fusedGN ours+fusedGN+gathered \
  --no-channels-last --batches :2 2>&1 | quiet | grep "| train"
date -u
