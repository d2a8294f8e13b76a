#!/usr/bin/env bash
# Session 18 (issue #2): SS3D's walk on the Gluon kernel (scan_gluon.py) against the chunked Triton
# kernel, same machine: its GPU tests, the scan alone with a sweep of its launches, the paper network
# eager (bf16 and fp32, batch 1 and 8) and compiled (profiled, batch 8) with either kernel; then each
# convolution alone (where the compiled network's cuDNN layout transforms come from). ~9 min.
#   bash scripts/gpu_session18.sh $OUT
source "$(dirname "$0")/device_preamble.sh" "$@"
quiet() { grep -v "^USDT\|profiler_st"; }
python3 -c "import triton, torch; print('triton', triton.__version__, 'torch', torch.__version__)"
timeout 100 python3 benchmarks/scan_walk_gpu.py --out "$OUT/scan_walk" --sweep 2>&1 | tail -n 30
timeout 120 python3 -m pytest -q -p no:cacheprovider -m gpu Testing/ops/test_scan_along_paths.py -k gluon 2>&1 | tail -n 15
timeout 150 python3 benchmarks/model_gpu.py --out "$OUT/model_eager" --variants ours+fusedGN ours+fusedGN+gluon \
  --no-channels-last --batches 1,8: 2>&1 | quiet | tail -n 16
for v in ours+compile+gluon ours+compile; do
  timeout 150 python3 benchmarks/profile_gpu.py --out "$OUT/profile_$v" --variant $v --channels-last no \
    --modes infer 2>&1 | quiet | grep "^## "
done
timeout 80 python3 benchmarks/conv_layers_gpu.py --out "$OUT/conv_layers" --channels-last no 2>&1 | quiet | grep "^## \|graphs\|^- "
date -u
