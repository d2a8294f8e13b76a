#!/usr/bin/env bash
# Issue #5's experiment with a budget that can separate the arms (session 1's 80 s per arm at batch 1
# left every student at Dice 0): the shipped default as teacher, student-t1 alone / + ReCo-KD /
# + self-distillation, and a teacher-sized KAN-Mamba, each for the same steps at batch 4.
#   bash scripts/gpu_session5_distill.sh $OUT [SECONDS_PER_ARM=110] [PREVIOUS_OUT]
# One call fits four arms of ~110 s in the 10-minute limit; later calls continue every arm from
# PREVIOUS_OUT (the last call's files, copied to .prev/distill, git-ignored, and named in `carry`).
# Each arm stops on its time limit: --steps 100000 only keeps the learning rate near its peak (the
# cosine over 100,000 steps barely moves) and the KD terms ramp up over min(200, steps/5) = 200 steps.
# Needs .data/label_maps and .data/fsaverage (carried) and the nibabel wheel's PYTHONPATH.
set -uo pipefail
OUT=${1:?OUT}; SEC=${2:-110}; PREV=${3:-}
export PYTHONUNBUFFERED=1
mkdir -p "$OUT"
date -u
RESUME=()
[ -n "$PREV" ] && RESUME=(--resume "$PREV")
python3 scripts/distill_experiment.py --out "$OUT" --teacher MedSegMamba/medsegmamba/weights/default.safetensors \
  --arms teacher,student,reco,self,kan --batch 4 --steps 100000 --max-seconds-per-arm "$SEC" \
  "${RESUME[@]}" > "$OUT/distill.log" 2>&1
echo "distill_experiment exit $?"; tail -n 12 "$OUT/distill.log"
date -u
ls -la "$OUT"
