#!/usr/bin/env bash
# Session 18, call 3 (issue #2): the package's defaults after calls 1-2 (the walk "auto", the fused
# depthwise convolution) compiled with inductor's channels-last layout forced on against its
# heuristic, and with a channels_last_3d model; the eager network at those defaults. ~6 min.
#   bash scripts/gpu_session18c.sh $OUT
source "$(dirname "$0")/device_preamble.sh" "$@"
quiet() { grep -v "^USDT\|profiler_st"; }
python3 -c "import triton, torch; print('triton', triton.__version__, 'torch', torch.__version__)"
timeout 200 python3 benchmarks/profile_gpu.py --out "$OUT/profile_compile_forcecl" --variant ours+compile+forcecl \
  --channels-last both --modes infer 2>&1 | quiet | grep "^## "
timeout 100 python3 benchmarks/profile_gpu.py --out "$OUT/profile_compile" --variant ours+compile \
  --channels-last no --modes infer 2>&1 | quiet | grep "^## "
timeout 100 python3 benchmarks/model_gpu.py --out "$OUT/model_eager" --variants ours+fusedGN \
  --batches 1,8: 2>&1 | quiet | tail -n 14
date -u
