#!/usr/bin/env bash
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
quiet() { grep -v "^USDT\|profiler_st\|UserWarning\|warn_once\|This call originates\|File \"\|if interpreting\|return _multi\|^ *$"; }
for b in shared split; do
  MEDSEGMAMBA_TRITON_BWD_BUFFERS=$b timeout 170 python3 benchmarks/model_gpu.py --no-check \
    --out "$OUT/train_compiled_$b" --variants ours+compile --no-channels-last --batches :8 2>&1 | quiet \
    | grep "| train\|Error" | sed "s/^/$b /"
  rm -f "$OUT/train_compiled_$b/results.json"
done
date -u
NCU=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -n 1)
name=ncu_walk
timeout 150 "$NCU" --clock-control none --target-processes all --kernel-name regex:scan_paths_fwd_kernel \
  --launch-count 1 --section SpeedOfLight --section Occupancy --section SchedulerStats --section WarpStateStats \
  --section InstructionStats --section ComputeWorkloadAnalysis --section SourceCounters --export "$OUT/$name" \
  python3 benchmarks/scan_walk_gpu.py --out "$OUT/run" --batches 8 --iters 1 > "$OUT/$name.log" 2>&1
echo "ncu $name exit $?"; tail -n 2 "$OUT/$name.log"; rm -f "$OUT/$name.log"
"$NCU" --import "$OUT/$name.ncu-rep" --page details > "$OUT/${name}_details.txt" 2>&1
"$NCU" --import "$OUT/$name.ncu-rep" --page source --csv --print-source sass > "$OUT/$name.csv" 2>&1
python3 benchmarks/ncu_sass_summary.py "$OUT/$name.csv" --top 30 > "$OUT/${name}_sass.md" 2>&1
rm -rf "$OUT/$name.csv" "$OUT/$name.ncu-rep" "$OUT/run"
grep -i "duration\|issue slots\|warps per\|eligible\|cycles per issued\|pipe" "$OUT/${name}_details.txt" | head -n 16
sed -n 1,24p "$OUT/${name}_sass.md"
date -u
