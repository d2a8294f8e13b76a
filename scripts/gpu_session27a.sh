#!/usr/bin/env bash
# For issue #2 (written in session 26, whose device calls all got no machine): three changes to the Gluon
# backward, as patches applied to this call's copy of the tree only (gpu_patched_kernels.sh); main keeps its
# kernel until this shows them right and faster. Built for sm_90 on the CPU (Triton 3.6), never run on a GPU;
# counts in benchmarks/results/2026-12-08-s26/ (the loop over pairs of steps, default launch: 362 instructions
# and 64 shuffles before, 298 / 32 with p2, 282 / 24 with p3, 267 / 16 with p2full at three programs an SM).
# Session 27 ran them all through the Gluon emulator (check_patches_emulated.sh: right on the CPU) and put p1
# on main (exact: the same outputs to the bit there); "before" is p1 reversed.
# - p1 bwd_skip_unread_steps: no recomputed steps whose states nothing reads (2.6 exponentials, not 3);
# - p2 bwd_lane_sums (over p1): dB and dC summed per step in TPW_D / 2 groups of channels, the groups
#   added once per sub-chunk; p2full: a group a lane;
# - p3 bwd_state_sums (over p2): the sums over states (for du, ddelta) likewise, in TPW_N / 2 groups.
# 1. GPU tests of the scan's gradients (Gluon backward, walked and not) against float64 loops, on p3.
# 2. One paper-size scan's forward + backward at batch 8 (fp32, dB/dC atomic) for each kernel, at the
#    default launch and, for before and p2, at 4,4,4,4,168,8 (4 channels a thread; with p3 its shared memory
#    leaves two programs an SM).
# ~9 min. Then gpu_session27b.sh times the training step with the best.
#   bash scripts/gpu_session27a.sh $OUT          (carry .whl)
source "$(dirname "$0")/device_preamble.sh" "$@"
source "$(dirname "$0")/gpu_patched_kernels.sh"
timeout 150 python3 -m pytest -q -p no:cacheprovider -m gpu \
  Testing/ops/test_scan_along_paths.py Testing/ops/test_scan_triton.py -k "gradients or backward" 2>&1 | tail -n 3
date -u
for v in p3 before p2 p1 p2full; do
  cp "/tmp/k_$v.py" "$F"
  L=default; [ $v = p2 ] || [ $v = before ] && L="default 4,4,4,4,168,8"
  timeout 90 python3 benchmarks/scan_bwd_gluon.py --out "$OUT/bwd_$v" --batches 8 --bc atomic --launches $L 2>&1 \
    | grep "^{" | sed "s/^/$v /"; rm -rf "$OUT/bwd_$v"
  date -u
done
