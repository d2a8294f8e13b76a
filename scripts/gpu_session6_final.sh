#!/usr/bin/env bash
# Session 6, last call (one H100, ~9 min): the default model's last training run of the session
# (batch 16, its cycle ending at 34,000), then the end-to-end benchmark again with the faster box
# search and the uint8 label maps: the paper network at step 32 and 16 (issue #3), the default model.
#   bash scripts/gpu_session6_final.sh $OUT [TRAIN_MINUTES=7.3]  (carry .data/label_maps, .data/mni152_t1.nii.gz, .whl)
source "$(dirname "$0")/device_preamble.sh" "$@"
bash scripts/gpu_session4.sh "$OUT" "${2:-7.3}" - --max-iters 34000 --ce-until 0 --batch-size 16 --lr 1e-3 2>&1 | grep SUMMARY
W=MedSegMamba/medsegmamba/weights/default.safetensors
timeout 100 python3 benchmarks/pipeline_bench.py --out /tmp/pipe1 --input .data/mni152_t1.nii.gz \
  --models paper --locator "$W" --steps 32 16 --batch-sizes 16 12 --tilings focused --repeat 3 > "$OUT/pipeline_paper.log" 2>&1
echo "paper exit $?"; tail -n 5 "$OUT/pipeline_paper.log"
timeout 60 python3 benchmarks/pipeline_bench.py --out /tmp/pipe2 --input .data/mni152_t1.nii.gz \
  --models "$W" --steps 32 16 --batch-sizes 0 --tilings focused --repeat 3 > "$OUT/pipeline_default.log" 2>&1
echo "default exit $?"; tail -n 3 "$OUT/pipeline_default.log"
cp /tmp/pipe1/results.csv "$OUT/pipeline_paper.csv"; cp /tmp/pipe2/results.csv "$OUT/pipeline_default.csv"
date -u
