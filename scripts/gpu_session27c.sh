#!/usr/bin/env bash
# For issue #2 (written in session 27, no machine lent): Nsight Compute on the two Gluon kernels at batch 8,
# what their warps wait on (SchedulerStats, WarpStateStats, stall samples per SASS line, ncu_sass_summary.py).
# 1. The walk (scan_gluon.scan_paths_fwd_kernel): 36 % of the compiled network's inference (session 18),
#    1.6 times its floor of one MUFU.EX2 an element-step. As built for sm_90 its loop issues 7.45
#    instructions an element-step: 1/17 clock against the EX2's 1/16, so neither bound alone explains it.
#    (Session 24's gpu_session24b.sh planned this; it never ran.)
# 2. The backward (scan_gluon.scan_bwd_kernel, main's: p1), 17.3 ms of the 41 ms compiled training step
#    (session 22): 31.1 instructions and 2.6 EX2 an element-step as built, issue-bound on paper.
# ~5 min. Text reports in $OUT.   bash scripts/gpu_session27c.sh $OUT          (carry .whl)
source "$(dirname "$0")/device_preamble.sh" "$@"
ncu_profile ncu_walk scan_paths_fwd_kernel python3 benchmarks/scan_walk_gpu.py --out "$OUT/run" --batches 8 --iters 1
rm -rf "$OUT/run"
date -u
ncu_profile ncu_bwd scan_bwd_kernel python3 benchmarks/scan_bwd_gluon.py --out "$OUT/run" --batches 8 --bc atomic --once
rm -rf "$OUT/run"
date -u
