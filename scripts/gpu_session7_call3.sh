#!/usr/bin/env bash
# Session 7, call 3 (one H100, ~8 min): the end-to-end benchmark again after the changes around the
# network (volume counts, uint8 voxels and labels; issue #3), then the paper network's forward per
# patch eager (ours+fusedGN, the pipeline's path) against torch.compile (issue #2). Brings back 4 files.
#   bash scripts/gpu_session7_call3.sh $OUT     (carry .data/mni152_t1.nii.gz and .whl)
source "$(dirname "$0")/device_preamble.sh" "$@"
IN=.data/mni152_t1.nii.gz
W=MedSegMamba/medsegmamba/weights/default.safetensors
bench() { timeout 150 python3 benchmarks/pipeline_bench.py --input "$IN" --tilings focused "$@"; }
bench --out /tmp/p1 --models paper --locator locator --steps 32 --batch-sizes 16 12 --repeat 11 > /tmp/p1.log 2>&1
echo "paper: exit $?"; tail -n 4 /tmp/p1.log
bench --out /tmp/p2 --models "$W" --locator locator --steps 32 16 --batch-sizes 0 --repeat 5 > /tmp/p2.log 2>&1
echo "default model: exit $?"; tail -n 4 /tmp/p2.log
{ cat /tmp/p1/results.csv; tail -n +2 /tmp/p2/results.csv; } > "$OUT/pipeline.csv"
cat /tmp/p1.log /tmp/p2.log > "$OUT/pipeline.log"
timeout 380 python3 benchmarks/model_gpu.py --out /tmp/m --variants ours+fusedGN ours+compile \
  --no-channels-last > /tmp/m.log 2>&1
echo "model_gpu: exit $?"; grep -v "^\[" /tmp/m/results.md 2>/dev/null || tail -n 20 /tmp/m.log
cp /tmp/m/results.md "$OUT/model_compile.md" 2>/dev/null; cp /tmp/m/results.json "$OUT/model_compile.json" 2>/dev/null
tail -n 30 /tmp/m.log > "$OUT/model_compile.log"
date -u
