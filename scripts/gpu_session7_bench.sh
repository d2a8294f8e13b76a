#!/usr/bin/env bash
# Session 7, the end-to-end benchmark with the 3 mm locator (one H100, ~3 min): the paper network
# (seeded random weights) at step 32 with the shipped `locator` finding its box in one patch, against
# the 1 mm coarse pass of the default model (`--locator default`, the path of session 6) in the same
# run; step 16; then the default model at the defaults (issue #3). Brings back 2 files.
#   bash scripts/gpu_session7_bench.sh $OUT     (carry .data/mni152_t1.nii.gz and .whl)
source "$(dirname "$0")/device_preamble.sh" "$@"
IN=.data/mni152_t1.nii.gz
W=MedSegMamba/medsegmamba/weights/default.safetensors
bench() { timeout 150 python3 benchmarks/pipeline_bench.py --input "$IN" --tilings focused "$@"; }
bench --out /tmp/p1 --models paper --locator locator --steps 32 --batch-sizes 16 12 8 --repeat 9 > /tmp/p1.log 2>&1
echo "paper, 3 mm locator: exit $?"; tail -n 5 /tmp/p1.log
bench --out /tmp/p2 --models paper --locator "$W" --steps 32 --batch-sizes 16 --repeat 9 > /tmp/p2.log 2>&1
echo "paper, 1 mm coarse pass of the default model: exit $?"; tail -n 3 /tmp/p2.log
bench --out /tmp/p3 --models paper --locator locator --steps 16 --batch-sizes 16 --repeat 5 > /tmp/p3.log 2>&1
echo "paper, step 16: exit $?"; tail -n 3 /tmp/p3.log
bench --out /tmp/p4 --models "$W" --locator locator --steps 32 16 --batch-sizes 0 --repeat 5 > /tmp/p4.log 2>&1
echo "default model: exit $?"; tail -n 4 /tmp/p4.log
{ cat /tmp/p1/results.csv; for d in p2 p3 p4; do tail -n +2 /tmp/$d/results.csv; done; } > "$OUT/pipeline.csv"
cat /tmp/p1.log /tmp/p2.log /tmp/p3.log /tmp/p4.log > "$OUT/pipeline.log"
date -u
