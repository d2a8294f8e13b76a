#!/usr/bin/env bash
# Planned training calls of the next session (written 2026-11-23, session 3; not yet run):
# resume the default model with Dice + cross-entropy, so that the CSF target added at iteration
# 8,594 can come back (the soft Dice gradient of a class the network gives ~1e-13 vanishes:
# docs/model_card_default.md). The learning rate restarts at 14,000.
#   bash scripts/gpu_session4.sh $OUT [TRAIN_MINUTES=8] [seed|-] [more train flags, e.g. --max-iters N]
# "seed" (the FIRST call only: it would undo what later runs learnt) also starts the CSF row of
# the last layer from the 3rd ventricle's (--seed-class 24=14).
# Needs .data/ (label maps, fsaverage) and the nibabel wheel, both carried. Brings back 7 files;
# then publish them as the model card says (python3 -m medsegmamba.train.publish DIR).
set -uo pipefail
OUT=${1:?OUT}; MIN=${2:-8}; SEED=()
[ "${3:-}" = seed ] && SEED=(--seed-class 24=14)
shift $(( $# >= 3 ? 3 : $# ))
export PYTHONUNBUFFERED=1
mkdir -p "$OUT"
date -u
bash scripts/train_gpu.sh /tmp/train "$MIN" --ce-until 40000 "${SEED[@]}" "$@" | tail -n 4
cp /tmp/train/{last.safetensors,last.optim-0.safetensors,last.optim-1.safetensors,model_fp16.safetensors,log.jsonl,summary.json,train.txt} "$OUT/" 2>/dev/null
date -u
ls -la "$OUT"
