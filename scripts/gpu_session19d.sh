#!/usr/bin/env bash
# Session 19, call 4 (issue #2): SS3D's scan under autograd on the walked route (the chunked forward
# and the Gluon backward follow the paths; no gathers): GPU tests against float64; the paper
# network's eager training step walked, gathered (the Gluon backward) and gathered with the chunked
# backward (before this session); the walked step's profile; the compiled step. ~8 min.
#   bash scripts/gpu_session19d.sh $OUT
source "$(dirname "$0")/device_preamble.sh" "$@"
quiet() { grep -v "^USDT\|profiler_st"; }
timeout 150 python3 -m pytest -q -p no:cacheprovider -m gpu Testing/ops/test_scan_along_paths.py \
  Testing/ops/test_scan_triton.py -k "gluon or walked" 2>&1 | grep -v "^E  *[+ ]" | tail -n 15
timeout 120 python3 benchmarks/model_gpu.py --out "$OUT/train" --variants ours+fusedGN ours+fusedGN+gathered \
  --no-channels-last --batches :2 2>&1 | quiet | grep "| train"
MEDSEGMAMBA_TRITON_BWD=chunked timeout 60 python3 benchmarks/model_gpu.py --out "$OUT/train_chunked" \
  --variants ours+fusedGN --no-channels-last --batches :2 2>&1 | quiet | grep "| train"
timeout 90 python3 benchmarks/profile_gpu.py --out "$OUT/profile_train" --variant ours+fusedGN --channels-last no \
  --modes train 2>&1 | quiet | sed -n '/^| kind/,/^$/p' | head -n 12
timeout 150 python3 benchmarks/model_gpu.py --out "$OUT/train_compiled" --variants ours+compile \
  --no-channels-last --batches :2 2>&1 | quiet | grep "| train\|Error\|error" | head -n 5
date -u
