#!/usr/bin/env bash
# Session 6, call 3 (one H100, ~6 min): the training throughput sweep again, stopping on iterations
# (call 2's version stopped on minutes and measured nothing), then where the paper network's predict
# stage goes at step 32 (benchmarks/predict_breakdown.py), batch 16 and 12.
#   bash scripts/gpu_session6_call3.sh $OUT     (carry .data/label_maps, .data/mni152_t1.nii.gz, .whl)
source "$(dirname "$0")/device_preamble.sh" "$@"
bash scripts/gpu_train_throughput.sh "$OUT" "4:500 8:300 16:200" 2>&1 | tail -n 7
W=MedSegMamba/medsegmamba/weights/default.safetensors
for B in 16 12; do
  timeout 120 python3 benchmarks/predict_breakdown.py --input .data/mni152_t1.nii.gz --model paper \
    --locator "$W" --step 32 --batch-size $B --repeat 3 2>&1 | tail -n 12 | tee "$OUT/predict_b$B.md"
done
date -u
