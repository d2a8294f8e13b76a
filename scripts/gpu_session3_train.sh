#!/usr/bin/env bash
# Device calls 2+ of session 3 (2026-11-23): pick the Triton backward for the default model's own
# scan size (d_inner 128 x 8 directions, N 16, L 12^3), then resume training the default model
# (label 24 now trained as the cistern CSF: configs/default.json "csf": "cistern").
#   bash scripts/gpu_session3_train.sh $OUT [TRAIN_MINUTES=7]
# Needs .data/ (label maps, fsaverage) and the nibabel wheel, both carried. Brings back 8 files.
set -uo pipefail
OUT=${1:?OUT}; MIN=${2:-7}
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD/MedSegMamba${PYTHONPATH:+:$PYTHONPATH}"
mkdir -p "$OUT"
date -u
timeout 120 python3 benchmarks/scan_gpu.py --out /tmp/scan --size 1024,8,16,1728 \
  --parts accuracy,timings,sweep > /tmp/scan.log 2>&1
echo "scan_gpu (default model's size) exit $?"; grep -A12 "^summary" /tmp/scan.log
cp /tmp/scan/results.md "$OUT/scan_default_size.md" 2>/dev/null
export MEDSEGMAMBA_TRITON_BWD=$(python3 scripts/bwd_verdict.py /tmp/scan/results.json)
echo "training with the $MEDSEGMAMBA_TRITON_BWD backward"
bash scripts/train_gpu.sh /tmp/train "$MIN" --ce-until 6000 | tail -n 4
cp /tmp/train/{last.safetensors,last.optim-0.safetensors,last.optim-1.safetensors,model_fp16.safetensors,log.jsonl,summary.json,train.txt} "$OUT/" 2>/dev/null
date -u
ls -la "$OUT"
