#!/usr/bin/env bash
# Session 23, call 5 (issue #2): where the Gluon backward's warps wait at the batch training runs (8), not
# at batch 1 (session 19's profile, 1.29 waves): Nsight Compute on scan_gluon.scan_bwd_kernel, one
# paper-size scan, dB/dC added atomically; stall reasons and the stall samples per SASS line
# (ncu_sass_summary.py). Session 23 counted, as built for sm_90, 64 shuffles and ~60 shared-memory
# wavefronts a warp per pair of steps against 362 instructions: if the MIO pipe (shuffles and
# shared memory together) bounds the loop, the short-scoreboard and MIO-throttle stalls will lead.
# First the walked route's gradients with the chunked walk and delta's softplus in the kernel
# (eager's default at batches 2 and 4). ~3 min. Text reports in $OUT.
#   bash scripts/gpu_session23d.sh $OUT          (carry .whl)
source "$(dirname "$0")/device_preamble.sh" "$@"
timeout 60 python3 -m pytest -q -p no:cacheprovider -m gpu Testing/ops/test_scan_along_paths.py \
  -k "walked_gradients_match and chunked-kernel" 2>&1 | tail -n 2
NCU=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -n 1)
echo "ncu: $NCU"
timeout 400 "$NCU" --clock-control none --target-processes all --kernel-name regex:scan_bwd_kernel \
  --launch-count 1 \
  --section SpeedOfLight --section ComputeWorkloadAnalysis --section MemoryWorkloadAnalysis \
  --section Occupancy --section SchedulerStats --section WarpStateStats --section InstructionStats \
  --section LaunchStats --section SourceCounters \
  --export "$OUT/bwd" python3 benchmarks/scan_bwd_gluon.py --out "$OUT/run" --once --batches 8 --bc atomic \
  > "$OUT/ncu_run.txt" 2>&1
echo "ncu exit $?"
tail -n 5 "$OUT/ncu_run.txt"
"$NCU" --import "$OUT/bwd.ncu-rep" --page details > "$OUT/ncu_details.txt" 2>&1
"$NCU" --import "$OUT/bwd.ncu-rep" --page source --csv --print-source sass > "$OUT/ncu_sass.csv" 2>&1
python3 benchmarks/ncu_sass_summary.py "$OUT/ncu_sass.csv" --top 30 > "$OUT/sass_summary.md" 2>&1
rm -f "$OUT/ncu_sass.csv"
grep -i "stall\|issued\|warps per\|eligible\|throughput\|pipe" "$OUT/ncu_details.txt" | head -n 40
head -n 40 "$OUT/sass_summary.md"
date -u
