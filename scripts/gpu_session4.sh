#!/usr/bin/env bash
# Training calls of the default model (written in session 3, run in session 4: runs 11-15, model card):
# resume it with Dice + cross-entropy, so that the CSF target added at iteration 8,594 can come back
# (the soft Dice gradient of a class the network gives ~1e-13 vanishes). `--ce-until 0` after it
# turns cross-entropy off again; `--max-iters N` ends the run and its learning-rate cycle at N.
#   bash scripts/gpu_session4.sh $OUT [TRAIN_MINUTES=8] [seed|-] [more train flags, e.g. --max-iters N]
# "seed" (the FIRST call only: it would undo what later runs learnt) also starts the CSF row of
# the last layer from the 3rd ventricle's (--seed-class 24=14).
# Carry .data/label_maps, .data/fsaverage and .whl (the preamble installs the nibabel wheel).
# Brings back 7 files; then publish them as the model card says (python3 -m medsegmamba.train.publish DIR).
source "$(dirname "$0")/device_preamble.sh" "$@"
MIN=${2:-8}; SEED=()
[ "${3:-}" = seed ] && SEED=(--seed-class 24=14)
shift $(( $# >= 3 ? 3 : $# ))
bash scripts/train_gpu.sh /tmp/train "$MIN" --ce-until 40000 "${SEED[@]}" "$@" | tail -n 4
cp /tmp/train/{last.safetensors,last.optim-0.safetensors,last.optim-1.safetensors,model_fp16.safetensors,log.jsonl,summary.json,train.txt} "$OUT/" 2>/dev/null
date -u
ls -la "$OUT"
