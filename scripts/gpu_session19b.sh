#!/usr/bin/env bash
# Session 19, call 2 (issue #2): the Gluon backward with its shared rows free of bank conflicts, the
# next pair's state loaded a pair ahead and 128 registers a thread (4 programs a multiprocessor):
# GPU tests; timed against the chunked backward at four launches; Nsight Compute at batch 1; the
# paper network's eager training step with each backward, and its profile with the Gluon one. ~6 min.
#   bash scripts/gpu_session19b.sh $OUT
source "$(dirname "$0")/device_preamble.sh" "$@"
quiet() { grep -v "^USDT\|profiler_st"; }
timeout 120 python3 -m pytest -q -p no:cacheprovider -m gpu Testing/ops/test_scan_triton.py -k gluon 2>&1 \
  | grep -v "^E  *[+ ]" | tail -n 20
timeout 150 python3 benchmarks/scan_bwd_gluon.py --out "$OUT/bwd_gluon" \
  --launches default 4,4,2,4,168 4,4,2,4,0 2,8,2,4 2>&1 | tail -n 4
NCU=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -n 1)
timeout 120 "$NCU" --clock-control none --kernel-name regex:"^scan_bwd" --launch-count 1 --set full \
  python3 benchmarks/scan_bwd_gluon.py --out "$OUT/ncu_run" --once --batches 1 > "$OUT/ncu_bwd_full.txt" 2>&1
grep -E "scan_bwd|Duration|Registers Per|Achieved Occupancy|Issue Slots Busy|Memory Throughput|Warp Cycles Per Issued|stalled|way bank|Executed Ipc A" \
  "$OUT/ncu_bwd_full.txt" | cut -c1-200 | head -n 40
for bwd in chunked gluon; do
  MEDSEGMAMBA_TRITON_BWD=$bwd timeout 100 python3 benchmarks/model_gpu.py --out "$OUT/train_$bwd" \
    --variants ours+fusedGN --no-channels-last --batches :2 2>&1 | quiet | grep "| train"
done
MEDSEGMAMBA_TRITON_BWD=gluon timeout 150 python3 benchmarks/profile_gpu.py --out "$OUT/profile_train" \
  --variant ours+fusedGN --channels-last no --modes train 2>&1 | quiet | tail -n 25
date -u
