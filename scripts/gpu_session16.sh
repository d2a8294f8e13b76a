#!/usr/bin/env bash
# Session 16 (issue #2): SS3D's scan walking the paths in the kernel (selective_scan_paths) against
# the gathered route it replaced: the scan alone at the paper's size (accuracy, time), the paper
# network eager (bf16 and fp32, batch 1 and 8, both memory layouts), then torch.compile: a profile
# of the walked network in both layouts and the gathered one for comparison; and the scan backward
# on dl against its earlier times. ~9 min.
#   bash scripts/gpu_session16.sh $OUT
source "$(dirname "$0")/device_preamble.sh" "$@"
quiet() { grep -v "^USDT\|profiler_st"; }
python3 benchmarks/scan_paths_gpu.py --out "$OUT/scan_paths" 2>&1 | tail -n 12
# the backward on dl (delta's softplus applied before the kernel since session 16): one scan's
# forward + backward and its accuracy, against sessions 7-11's 9.1 ms at the paper's size
timeout 150 python3 benchmarks/scan_bwd_segments.py --out "$OUT/bwd" --parts timings,accuracy 2>&1 | grep -v '^{' | tail -n 16
python3 benchmarks/model_gpu.py --out "$OUT/model_eager" --variants ours+fusedGN ours+fusedGN+gathered \
  --batches 1,8:1 2>&1 | quiet | tail -n 22
python3 benchmarks/profile_gpu.py --out "$OUT/profile_compiled" --variant ours+compile --channels-last both \
  --modes infer 2>&1 | quiet | grep "^## "
python3 benchmarks/model_gpu.py --out "$OUT/model_compiled_gathered" --variants ours+compile+gathered \
  --no-channels-last --batches 8: 2>&1 | quiet | tail -n 5
date -u
