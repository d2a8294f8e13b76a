#!/usr/bin/env bash
# Session 24 wrote it; no machine was lent that session. Issue #2, right after gpu_session24.sh on the
# same machine:
# 0. The paper network's compiled training step at batch 8, $MEDSEGMAMBA_TRITON_BWD_BUFFERS shared / split.
# 1. Nsight Compute on the Gluon walk's forward (scan_gluon.scan_paths_fwd_kernel, SS3D's inference scan,
#    batch 8; 36 % of the compiled network's inference in session 18): warp states and stall samples per
#    SASS line. As built for sm_90 its loop needs about one MUFU.EX2 a clock-quarter per scheduler
#    and as many issue slots: if both pipes are near full, the stalls will be few and spread.
# 2. Each convolution's forward + backward (training) replayed alone in its own layout and in the other (conv_layers_gpu.py --relayout): which ones lose cuDNN's layout
#    transforms in channels_last_3d, and at what price. ~9 min. Text reports in $OUT.
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
timeout 100 python3 benchmarks/conv_layers_gpu.py --out "$OUT/conv_train" --train --relayout --channels-last no \
  --no-explain 2>&1 | quiet | grep "^## "
rm -f "$OUT/conv_train/results.json"
date -u
