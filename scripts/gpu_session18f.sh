#!/usr/bin/env bash
# Session 18, call 6 (issue #2): the segmentation pipeline end to end with session 18's defaults
# (the Gluon walk where its grid fills the GPU, the fused depthwise convolution): the paper network
# (random weights) and the shipped default model, focused by the shipped locator. ~3 min.
#   bash scripts/gpu_session18f.sh $OUT     (carry .data/mni152_t1.nii.gz and .whl)
source "$(dirname "$0")/device_preamble.sh" "$@"
IN=.data/mni152_t1.nii.gz
W=MedSegMamba/medsegmamba/weights/default.safetensors
bench() { timeout 120 python3 benchmarks/pipeline_bench.py --input "$IN" --tilings focused "$@"; }
bench --out "$OUT/paper" --models paper --locator locator --steps 32 16 --batch-sizes 16 --repeat 5 > /tmp/p1.log 2>&1
echo "paper: exit $?"; tail -n 6 /tmp/p1.log
bench --out "$OUT/default" --models "$W" --locator locator --steps 32 16 --batch-sizes 0 --repeat 5 > /tmp/p2.log 2>&1
echo "default model: exit $?"; tail -n 6 /tmp/p2.log
date -u
