#!/usr/bin/env bash
# Session 6, call 7 (one H100, ~7 min): the default model's batch-16 cycle run to its end (34,000),
# then the paper network end to end at step 32 again with more repeats (call 6 gave 0.48 s at batch
# 12 and 0.56 s at batch 16, medians of 3: the runs vary by ~0.05 s), and the default model at the
# defaults. Brings back 7 files (a call returns no more than 8).
#   bash scripts/gpu_session6_call7.sh $OUT     (carry .data/label_maps, .data/mni152_t1.nii.gz, .whl)
source "$(dirname "$0")/device_preamble.sh" "$@"
bash scripts/train_gpu.sh /tmp/train 4.5 --max-iters 34000 --ce-until 0 --batch-size 16 --lr 1e-3 | grep SUMMARY
cp /tmp/train/{last.safetensors,last.optim-0.safetensors,last.optim-1.safetensors,log.jsonl,summary.json} "$OUT/"
W=MedSegMamba/medsegmamba/weights/default.safetensors
timeout 150 python3 benchmarks/pipeline_bench.py --out /tmp/pipe --input .data/mni152_t1.nii.gz \
  --models paper --locator "$W" --steps 32 --batch-sizes 12 16 8 --tilings focused --repeat 9 > /tmp/pipe.log 2>&1
echo "paper exit $?"; tail -n 4 /tmp/pipe.log
timeout 60 python3 benchmarks/pipeline_bench.py --out /tmp/pipe2 --input .data/mni152_t1.nii.gz \
  --models "$W" --steps 32 16 --batch-sizes 0 --tilings focused --repeat 5 > /tmp/pipe2.log 2>&1
echo "default exit $?"; tail -n 3 /tmp/pipe2.log
{ cat /tmp/pipe/results.csv; tail -n +2 /tmp/pipe2/results.csv; } > "$OUT/pipeline.csv"
cat /tmp/pipe.log /tmp/pipe2.log > "$OUT/pipeline.log"
date -u
