#!/usr/bin/env bash
# Session 16 (issue #2): SS3D's scan walking the paths in the kernel (selective_scan_paths) against
# the gathered route it replaced: the scan alone at the paper's size (accuracy, time), the paper
# network eager (bf16 and fp32, batch 1 and 8, both memory layouts), then torch.compile: a profile
# of the walked network in both layouts and the gathered one for comparison. ~8 min.
#   bash scripts/gpu_session16.sh $OUT
source "$(dirname "$0")/device_preamble.sh" "$@"
quiet() { grep -v "^USDT\|profiler_st"; }
python3 benchmarks/scan_paths_gpu.py --out "$OUT/scan_paths" 2>&1 | tail -n 12
python3 benchmarks/model_gpu.py --out "$OUT/model_eager" --variants ours+fusedGN ours+fusedGN+gathered \
  --batches 1,8:1 2>&1 | quiet | tail -n 22
python3 benchmarks/profile_gpu.py --out "$OUT/profile_compiled" --variant ours+compile --channels-last both \
  --modes infer 2>&1 | quiet | grep "^## "
python3 benchmarks/model_gpu.py --out "$OUT/model_compiled_gathered" --variants ours+compile+gathered \
  --no-channels-last --batches 8: 2>&1 | quiet | tail -n 5
date -u
