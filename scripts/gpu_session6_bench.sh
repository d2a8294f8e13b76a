#!/usr/bin/env bash
# Session 6, call 2 (one H100, ~7 min): how fast the default model trains against the batch size
# (scripts/gpu_train_throughput.sh: batch 4, 8, 16 from scratch, 1.5 min each), then the paper
# network and the default model end to end at step 32 on the MNI template with focused tiling,
# re-timing the writing since its three writers run side by side (issue #3).
#   bash scripts/gpu_session6_bench.sh $OUT     (carry .data/label_maps, .data/mni152_t1.nii.gz, .whl)
source "$(dirname "$0")/device_preamble.sh" "$@"
bash scripts/gpu_train_throughput.sh "$OUT" 1.5 "4 8 16" 2>&1 | tail -n 8
W=MedSegMamba/medsegmamba/weights/default.safetensors
timeout 200 python3 benchmarks/pipeline_bench.py --out /tmp/pipe --input .data/mni152_t1.nii.gz \
  --models paper "$W" --locator "$W" --steps 32 --batch-sizes 8 16 --tilings focused --repeat 2 \
  > "$OUT/pipeline.log" 2>&1
echo "pipeline_bench exit $?"; tail -n 12 "$OUT/pipeline.log"
cp /tmp/pipe/results.csv "$OUT/pipeline.csv" 2>/dev/null
date -u
