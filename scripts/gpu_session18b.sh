#!/usr/bin/env bash
# Session 18, call 2 (issue #2): SS3D's fused depthwise convolution + SiLU (ops/triton/depthwise_conv.py)
# and the Gluon walk's launches at batch 1, 2, 8; the paper network eager and compiled with the
# fused convolution ($MEDSEGMAMBA_DWCONV=auto, the default) against cuDNN's (=torch), same machine. ~7 min.
#   bash scripts/gpu_session18b.sh $OUT
source "$(dirname "$0")/device_preamble.sh" "$@"
quiet() { grep -v "^USDT\|profiler_st"; }
python3 -c "import triton, torch; print('triton', triton.__version__, 'torch', torch.__version__)"
timeout 120 python3 -m pytest -q -p no:cacheprovider -m gpu Testing/ops/test_depthwise_conv.py \
  Testing/ops/test_scan_along_paths.py 2>&1 | tail -n 15
timeout 120 python3 benchmarks/scan_walk_gpu.py --out "$OUT/scan_walk" --batches 1,2,8 --sweep 1,2 2>&1 | tail -n 32
timeout 120 python3 benchmarks/model_gpu.py --out "$OUT/model_eager" --variants ours+fusedGN ours+fusedGN+gluon \
  --no-channels-last --batches 1,8: 2>&1 | quiet | tail -n 14
MEDSEGMAMBA_DWCONV=torch timeout 90 python3 benchmarks/model_gpu.py --out "$OUT/model_eager_cudnnconv" \
  --variants ours+fusedGN+gluon --no-channels-last --batches 1,8: 2>&1 | quiet | tail -n 6
timeout 150 python3 benchmarks/profile_gpu.py --out "$OUT/profile_compile_gluon" --variant ours+compile+gluon \
  --channels-last no --modes infer 2>&1 | quiet | grep "^## "
MEDSEGMAMBA_DWCONV=torch timeout 150 python3 benchmarks/profile_gpu.py --out "$OUT/profile_compile_gluon_cudnnconv" \
  --variant ours+compile+gluon --channels-last no --modes infer 2>&1 | quiet | grep "^## "
date -u
