#!/usr/bin/env bash
# Session 19, call 1 (issue #2): the Gluon backward rebuilt (warps split the states; inputs, per-step
# sums and outputs staged in shared memory a sub-chunk at a time): its GPU tests against float64,
# its time against the chunked backward at three launches, both kernels under Nsight Compute at
# batch 1, and the paper network's eager training step with each. ~6 min.
#   bash scripts/gpu_session19.sh $OUT
source "$(dirname "$0")/device_preamble.sh" "$@"
quiet() { grep -v "^USDT\|profiler_st"; }
timeout 120 python3 -m pytest -q -p no:cacheprovider -m gpu Testing/ops/test_scan_triton.py -k gluon 2>&1 \
  | grep -v "^E  *[+ ]" | tail -n 20
timeout 120 python3 benchmarks/scan_bwd_gluon.py --out "$OUT/bwd_gluon" --launches default 4,4,1,4 2,8,2,4 2>&1 \
  | tail -n 4
NCU=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -n 1)
timeout 150 "$NCU" --clock-control none --kernel-name regex:scan_bwd --launch-count 2 --set full \
  python3 benchmarks/scan_bwd_gluon.py --out "$OUT/ncu_run" --once --batches 1 > "$OUT/ncu_bwd_full.txt" 2>&1
grep -E "scan_bwd|Duration|Registers Per|Achieved Occupancy|Issue Slots Busy|Memory Throughput|L2 Hit|Warp Cycles Per Issued|stalled|Compute \(SM\) Throughput|Executed Ipc A" \
  "$OUT/ncu_bwd_full.txt" | cut -c1-220 | head -n 60
for bwd in chunked gluon; do
  MEDSEGMAMBA_TRITON_BWD=$bwd timeout 100 python3 benchmarks/model_gpu.py --out "$OUT/train_$bwd" \
    --variants ours+fusedGN --no-channels-last --batches :2 2>&1 | quiet | grep "| train"
done
date -u
