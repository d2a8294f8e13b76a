#!/usr/bin/env bash
# Session 25, right after gpu_session25.sh on the same machine. Issue #2:
# 1. channels_last_3d's compiled training step at batch 8, now that the decoder's upsampling
#    (layers.NearestUp2) writes that layout whole: the profile with --ops (operators by their own
#    kernels' time, with the Python frames or autograd node that called them). Session 23: 46.4 ms of
#    device time a patch against 41.1 channels-first.
# 2. The eager network at batch 8 in both layouts, inference and training.
# 3. The Gluon backward with one channel a thread (SPT_D 1; 96 and 80 registers: five or six programs a
#    multiprocessor instead of four, a third more instructions per element-step) against the default.
# ~8 min. Text reports in $OUT.
#   bash scripts/gpu_session25b.sh $OUT          (carry .whl)
source "$(dirname "$0")/device_preamble.sh" "$@"
timeout 240 python3 benchmarks/profile_gpu.py --out "$OUT/profile_train_compiled_cl" --variant ours+compile \
  --modes train --train-batch 8 --channels-last yes --top 40 --ops 20 2>&1 | quiet | grep "^## \|Error"
rm -f "$OUT/profile_train_compiled_cl/results.json"
grep -A 22 "| operator" "$OUT/profile_train_compiled_cl/results.md" | cut -c 1-300
date -u
timeout 150 python3 benchmarks/model_gpu.py --no-check --out "$OUT/eager_layouts" --variants ours+fusedGN \
  --batches 8:8 2>&1 | quiet | grep "| infer\|| train\|Error"
rm -rf "$OUT/eager_layouts"
date -u
timeout 90 python3 benchmarks/scan_bwd_gluon.py --out "$OUT/bwd_launches" --batches 8 --bc atomic \
  --launches 4,4,1,4,96,8 4,4,1,4,80,8 2>&1 | grep "^{"; rm -rf "$OUT/bwd_launches"
date -u
