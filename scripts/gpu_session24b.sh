#!/usr/bin/env bash
# Session 25 ran parts of it (gpu_session25*.sh) and removed the split buffers
# ($MEDSEGMAMBA_TRITON_BWD_BUFFERS is now ignored).
# Session 24 wrote it; no machine was lent that session. Issue #2, right after gpu_session24.sh on the
# same machine:
# 0. The paper network's compiled training step at batch 8, $MEDSEGMAMBA_TRITON_BWD_BUFFERS shared / split.
# 1. Nsight Compute on the Gluon walk's forward (scan_gluon.scan_paths_fwd_kernel, SS3D's inference scan,
#    batch 8; 36 % of the compiled network's inference in session 18): warp states and stall samples per
#    SASS line. As built for sm_90 its loop executes 7.45 instructions and one MUFU.EX2 per
#    element-step: an H100 multiprocessor issues 128 lanes of instructions a clock and 16 of EX2, so
#    the exponentials bound it (1/16 clock per element-step against 7.45/128 = 1/17 for the
#    issue); the profile says how close to that the kernel runs and what the warps wait on.
# ~6 min. Text reports in $OUT.
#   bash scripts/gpu_session24b.sh $OUT          (carry .whl)
source "$(dirname "$0")/device_preamble.sh" "$@"
for b in shared split; do
  MEDSEGMAMBA_TRITON_BWD_BUFFERS=$b timeout 170 python3 benchmarks/model_gpu.py --no-check \
    --out "$OUT/train_compiled_$b" --variants ours+compile --no-channels-last --batches :8 2>&1 | quiet \
    | grep "| train\|Error" | sed "s/^/$b /"
  rm -f "$OUT/train_compiled_$b/results.json"
done
date -u
ncu_profile ncu_walk scan_paths_fwd_kernel python3 benchmarks/scan_walk_gpu.py --out "$OUT/run" --batches 8 --iters 1
rm -rf "$OUT/run"
date -u
