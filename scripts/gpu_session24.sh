#!/usr/bin/env bash
# Session 25 ran parts of it (gpu_session25*.sh) and removed the split buffers
# ($MEDSEGMAMBA_TRITON_BWD_BUFFERS is now ignored).
# Session 24 wrote it; no machine was lent that session. Issue #2: the Gluon backward with fewer
# barriers ($MEDSEGMAMBA_TRITON_BWD_BUFFERS=split: per-step sums in four sets of shared buffers by step
# modulo 4 and pair states in two by pair parity, so Triton's barrier analysis, which tracks a
# buffer whole, leaves 8 barriers a sub-chunk of 8 steps instead of 17; counted for sm_90 on the CPU).
# 1. GPU tests of the Gluon backward and the walked gradients, both buffer layouts.
# 2. One paper-size scan's forward + backward at batch 8 (fp32, dB/dC atomic): shared / split.
#    And the default buffers with one channel a thread (SPT_D 1, 96 and 80 registers).
# 3. The paper network's eager training step at batch 8: shared / split.
# 4. Nsight Compute (warp states, scheduler, source counters) on the backward, shared / split.
# ~9 min. Text reports in $OUT. If split is faster and its tests pass, make it the default.
#   bash scripts/gpu_session24.sh $OUT          (carry .whl)
source "$(dirname "$0")/device_preamble.sh" "$@"
timeout 200 python3 -m pytest -q -p no:cacheprovider -m gpu \
  Testing/ops/test_scan_along_paths.py Testing/ops/test_scan_triton.py -k "gradients or backward" 2>&1 | tail -n 3
date -u
for b in shared split; do
  MEDSEGMAMBA_TRITON_BWD_BUFFERS=$b timeout 60 python3 benchmarks/scan_bwd_gluon.py --out "$OUT/bwd_$b" \
    --batches 8 --bc atomic 2>&1 | grep "^{" | sed "s/^/$b /"; rm -rf "$OUT/bwd_$b"
done
# one channel a thread (half the registers: five or six programs a multiprocessor instead of four, as
# built for sm_90; a third more instructions per element-step): does occupancy buy back the latency?
timeout 90 python3 benchmarks/scan_bwd_gluon.py --out "$OUT/bwd_launches" --batches 8 --bc atomic \
  --launches 4,4,1,4,96,8 4,4,1,4,80,8 2>&1 | grep "^{"; rm -rf "$OUT/bwd_launches"
for b in shared split; do
  MEDSEGMAMBA_TRITON_BWD_BUFFERS=$b timeout 100 python3 benchmarks/model_gpu.py --no-check --out "$OUT/train_$b" \
    --variants ours+fusedGN --no-channels-last --batches :8 2>&1 | quiet | grep "| train\|Error" | sed "s/^/$b /"
  rm -f "$OUT/train_$b/results.json"
done
date -u
for b in shared split; do
  MEDSEGMAMBA_TRITON_BWD_BUFFERS=$b ncu_profile "ncu_$b" scan_bwd_kernel python3 benchmarks/scan_bwd_gluon.py \
    --out "$OUT/run" --once --batches 8 --bc atomic
  rm -rf "$OUT/run"
done
date -u
