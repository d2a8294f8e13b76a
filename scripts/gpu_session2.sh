#!/usr/bin/env bash
# Device call 3 of session 2 (2026-11-23): the sequential vs chunked Triton scan, the end-to-end
# pipeline with focused vs full tiling on a real T1 (the MNI152 template, carried in .data/), and the
# paper network per patch after the warps / fused-GroupNorm changes.
#   bash scripts/gpu_session2.sh $OUT
# Needs .data/mni152_t1.nii.gz (copied from nilearn's package data) and nibabel (carried wheel).
set -uo pipefail
OUT=${1:?OUT}
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD/MedSegMamba${PYTHONPATH:+:$PYTHONPATH}"
mkdir -p "$OUT"
python3 -c "import torch, triton; print(torch.__version__, triton.__version__, torch.cuda.get_device_name())"
date -u
timeout 250 python3 benchmarks/scan_gpu.py --out /tmp/scan > "$OUT/scan.log" 2>&1
echo "scan_gpu exit $?"; tail -n 45 "$OUT/scan.log"
cp /tmp/scan/results.md "$OUT/scan.md"; cp /tmp/scan/results.json "$OUT/scan.json"
W=MedSegMamba/medsegmamba/weights/default.safetensors
# trained weights: focused and full tiling; the paper network has random weights here, which label
# everything, so focused tiling would tile the whole head: full only
timeout 70 python3 benchmarks/pipeline_bench.py --out /tmp/pipe1 --input .data/mni152_t1.nii.gz \
  --models "$W" --steps 16 32 --batch-sizes 4 --tilings focused full --repeat 2 > "$OUT/pipeline.log" 2>&1
echo "pipeline_bench (default) exit $?"
timeout 80 python3 benchmarks/pipeline_bench.py --out /tmp/pipe2 --input .data/mni152_t1.nii.gz \
  --models paper --steps 16 32 --batch-sizes 4 --tilings full --repeat 2 >> "$OUT/pipeline.log" 2>&1
echo "pipeline_bench (paper) exit $?"; grep -A4 "^model " "$OUT/pipeline.log"
cat /tmp/pipe1/results.csv > "$OUT/pipeline.csv"; tail -n +2 /tmp/pipe2/results.csv >> "$OUT/pipeline.csv"
timeout 110 python3 benchmarks/model_gpu.py --out /tmp/model --iters 5 --variants ours+fusedGN \
  --no-channels-last > "$OUT/model.log" 2>&1
echo "model_gpu exit $?"; tail -n 12 "$OUT/model.log"
cp /tmp/model/results.json "$OUT/model.json" 2>/dev/null
ls -la "$OUT"
