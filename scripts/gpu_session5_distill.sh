#!/usr/bin/env bash
# Issue #5's experiment with a budget that can separate the arms (session 1's 80 s per arm at batch 1
# left every student at Dice 0): the shipped default as teacher, student-t1 alone / + ReCo-KD /
# + self-distillation, and a teacher-sized KAN-Mamba, each for the same time at batch 4.
#   bash scripts/gpu_session5_distill.sh $OUT ARMS [SECONDS_PER_ARM=470]
# One call per arm (ARMS "teacher,student", then "reco", "self", "kan"): resuming an arm in a later
# call would need its weights carried, and the repo plus the data leave no room under the 64 MiB
# carry limit. Join the calls afterwards, here:
#   python3 scripts/distill_experiment.py --out docs/distillation/RUN --merge /work/.device/{A,B,C,D}
# Each arm stops on its time limit: --steps 100000 only keeps the learning rate near its peak (the
# cosine over 100,000 steps barely moves) and the KD terms ramp up over min(200, steps/5) = 200 steps.
# Carry .data/label_maps, .data/fsaverage and .whl (all of .data passes the 64 MiB limit with the repo).
source "$(dirname "$0")/device_preamble.sh" "$@"
ARMS=${2:?ARMS}; SEC=${3:-470}
python3 scripts/distill_experiment.py --out "$OUT" --teacher MedSegMamba/medsegmamba/weights/default.safetensors \
  --arms "$ARMS" --batch 4 --steps 100000 --max-seconds-per-arm "$SEC" > "$OUT/distill.log" 2>&1
echo "distill_experiment exit $?"; tail -n 12 "$OUT/distill.log"
date -u
ls -la "$OUT"
