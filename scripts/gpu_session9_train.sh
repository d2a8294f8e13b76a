#!/usr/bin/env bash
# Session 9's training calls of the default model: resume with configs/default.json as it is now
# (synth.iso_prob 0.2: a fifth of the images at a low resolution on all three axes), Dice alone at
# batch 16, the learning-rate cycle cut to end at --max-iters.
#   bash scripts/gpu_session9_train.sh $OUT MINUTES [more train flags, e.g. --max-iters N]
# Each call trains into runs/s9/<time>/ on the device machine and resumes from the newest such run
# there (a warm machine keeps runs/, which git ignores), else from training/default/last.safetensors
# (copy the files a call brings back there before the next call, in case the machine went back).
# With ROBUST=1 it then scores the new and the shipped weights on blurred synthetic patches
# (scripts/synth_robustness.py) into $OUT/robustness.md.
# Carry .data/label_maps and .whl. Brings back 8 files; publish them as the model card says
# (python3 -m medsegmamba.train.publish DIR).
source "$(dirname "$0")/device_preamble.sh" "$@"
MIN=${2:?MINUTES}
shift 2
RESUME=training/default/last.safetensors
PREV=$(ls -d runs/s9/*/ 2>/dev/null | sort | tail -n 1)
if [ -n "$PREV" ] && [ -f "$PREV/last.safetensors" ]; then RESUME=$PREV/last.safetensors; fi
RUN=runs/s9/$(date -u +%H%M%S)
mkdir -p runs/s9
echo "resume from $RESUME, run in $RUN"
python3 -m medsegmamba.train.command --config configs/default.json --data .data/label_maps \
  --resume "$RESUME" --out "$RUN" --max-minutes "$MIN" --export --ce-until 0 --batch-size 16 \
  --lr 5e-4 "$@" 2>&1 | tee "$RUN.txt" | grep -v "^$" | tail -n 30
cp "$RUN.txt" "$OUT/train.txt"
cp "$RUN"/{last.safetensors,last.optim-0.safetensors,last.optim-1.safetensors,model_fp16.safetensors,log.jsonl,summary.json} "$OUT/"
if [ "${ROBUST:-0}" = 1 ]; then
  for m in "$RUN/model_fp16.safetensors" default; do
    python3 scripts/synth_robustness.py .data/label_maps --model "$m" --device cuda \
      --sigmas 0,1,1.5 --patches 24 --seed 4242 --out /tmp/rob.md && { echo "## $m"; cat /tmp/rob.md; } >> "$OUT/robustness.md"
  done
fi
date -u
ls -la "$OUT"
