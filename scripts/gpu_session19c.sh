#!/usr/bin/env bash
# Session 19, call 3 (issue #2): the Gluon backward with the pairs' states in shared memory (pass B
# reruns each sub-chunk's forward; no global workspace per pair): GPU tests; timed against the
# chunked backward at four launches (paper size) and against the package's choice at the default
# model's size; Nsight Compute at batch 1; the paper network's eager training step. ~6 min.
#   bash scripts/gpu_session19c.sh $OUT
source "$(dirname "$0")/device_preamble.sh" "$@"
quiet() { grep -v "^USDT\|profiler_st"; }
timeout 120 python3 -m pytest -q -p no:cacheprovider -m gpu Testing/ops/test_scan_triton.py -k gluon 2>&1 \
  | grep -v "^E  *[+ ]" | tail -n 20
timeout 150 python3 benchmarks/scan_bwd_gluon.py --out "$OUT/bwd_gluon" \
  --launches default 4,4,2,4,168,8 4,4,2,4,128,8 4,4,2,4,0,16 2>&1 | tail -n 3
timeout 100 python3 benchmarks/scan_bwd_gluon.py --out "$OUT/bwd_gluon_default_model" --default-model --batches 4,16 \
  --launches default 4,4,2,1,168,8 2>&1 | tail -n 3
NCU=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -n 1)
timeout 120 "$NCU" --clock-control none --kernel-name regex:"^scan_bwd" --launch-count 1 --set full \
  python3 benchmarks/scan_bwd_gluon.py --out "$OUT/ncu_run" --once --batches 1 > "$OUT/ncu_bwd_full.txt" 2>&1
grep -E "scan_bwd|Duration|Registers Per|Achieved Occupancy|Issue Slots Busy|Memory Throughput|DRAM Throughput|Warp Cycles Per Issued|stalled|way bank|Executed Ipc A" \
  "$OUT/ncu_bwd_full.txt" | cut -c1-200 | head -n 40
MEDSEGMAMBA_TRITON_BWD=gluon timeout 100 python3 benchmarks/model_gpu.py --out "$OUT/train_gluon" \
  --variants ours+fusedGN --no-channels-last --batches :2 2>&1 | quiet | grep "| train"
date -u
