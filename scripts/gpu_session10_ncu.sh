#!/usr/bin/env bash
# Session 10, call 3: Nsight Compute on the default scan backward (_scan_bwd_chunked_kernel, "scan"
# body) at the paper's size, batch 1, fp32: throughput against the chip's ceilings, warp stall
# reasons, the instruction mix, and the stall samples per SASS line (the hottest lines kept), so
# that the next attempt aims at what bounds it. ~2-3 min. Text reports in $OUT.
#   bash scripts/gpu_session10_ncu.sh $OUT          (carries nothing)
source "$(dirname "$0")/device_preamble.sh" "$@"
NCU=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -n 1)
echo "ncu: $NCU"
timeout 400 "$NCU" --clock-control none --target-processes all --kernel-name regex:_scan_bwd_chunked \
  --launch-skip 1 --launch-count 1 \
  --section SpeedOfLight --section ComputeWorkloadAnalysis --section MemoryWorkloadAnalysis \
  --section MemoryWorkloadAnalysis_Tables --section Occupancy --section SchedulerStats \
  --section WarpStateStats --section InstructionStats --section LaunchStats --section SourceCounters \
  --export "$OUT/bwd" python3 benchmarks/scan_bwd_profile_driver.py > "$OUT/ncu_run.txt" 2>&1
echo "ncu exit $?"
tail -n 5 "$OUT/ncu_run.txt"
"$NCU" --import "$OUT/bwd.ncu-rep" --page details > "$OUT/ncu_details.txt" 2>&1
"$NCU" --import "$OUT/bwd.ncu-rep" --page source --csv --print-source sass > "$OUT/ncu_sass.csv" 2>&1
ls -la "$OUT"; wc -l "$OUT"/*.txt "$OUT"/*.csv
head -c 12000 "$OUT/ncu_details.txt" | grep -v "^\s*$" | head -n 150
date -u
