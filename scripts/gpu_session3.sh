#!/usr/bin/env bash
# Planned first device call of the next session (written 2026-11-23, not yet run):
# 1. check and time the opt-in chunked Triton backward against the sequential one;
# 2. the end-to-end pipeline with the chunked forward as default and the coarse pass's argmax
#    (peak GPU memory at the default batch 2 and at batch 4, focused tiling);
# 3. resume training the default model; set MEDSEGMAMBA_TRITON_BWD=chunked first if step 1 showed
#    it correct and faster.
#   bash scripts/gpu_session3.sh $OUT [TRAIN_MINUTES=5]
# Needs .data/ (label maps, fsaverage, mni152_t1.nii.gz) and the nibabel wheel, both carried.
# Brings back 8 files (the most a call returns): scan.log, pipeline.log/.csv and 5 from training.
set -uo pipefail
OUT=${1:?OUT}; MIN=${2:-5}
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD/MedSegMamba${PYTHONPATH:+:$PYTHONPATH}"
mkdir -p "$OUT"
date -u
timeout 280 python3 benchmarks/scan_gpu.py --out /tmp/scan > "$OUT/scan.log" 2>&1
echo "scan_gpu exit $?"; grep -A14 "^summary" "$OUT/scan.log"
W=MedSegMamba/medsegmamba/weights/default.safetensors
timeout 90 python3 benchmarks/pipeline_bench.py --out /tmp/pipe --input .data/mni152_t1.nii.gz \
  --models "$W" --steps 16 32 --batch-sizes 0 4 --tilings focused --repeat 2 > "$OUT/pipeline.log" 2>&1
echo "pipeline_bench exit $?"; grep -A6 "^model " "$OUT/pipeline.log"
cp /tmp/pipe/results.csv "$OUT/pipeline.csv" 2>/dev/null
bash scripts/train_gpu.sh /tmp/train "$MIN" --ce-until 6000 | tail -n 3
cp /tmp/train/{last.safetensors,last.optim-0.safetensors,last.optim-1.safetensors,model_fp16.safetensors,log.jsonl} "$OUT/" 2>/dev/null
ls -la "$OUT"
