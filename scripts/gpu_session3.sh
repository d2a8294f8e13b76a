#!/usr/bin/env bash
# Device call 1 of session 3 (2026-11-23):
# 1. check and time the opt-in chunked Triton backward against the sequential one (paper sizes);
#    scripts/bwd_verdict.py decides from results.json whether it is as accurate and faster;
# 2. the end-to-end pipeline with the chunked forward as default and the coarse pass's argmax:
#    peak GPU memory at the default batch (2) and at batch 4, focused tiling, trained default model;
# 3. the paper network per patch (inference and training) with the chunked forward, and the
#    chunked backward when step 1 passed it.
#   bash scripts/gpu_session3.sh $OUT
# Needs .data/mni152_t1.nii.gz and the nibabel wheel, both carried. Brings back 8 files at most.
set -uo pipefail
OUT=${1:?OUT}
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD/MedSegMamba${PYTHONPATH:+:$PYTHONPATH}"
mkdir -p "$OUT"
python3 -c "import torch, triton; print(torch.__version__, triton.__version__, torch.cuda.get_device_name())"
date -u
timeout 240 python3 benchmarks/scan_gpu.py --out /tmp/scan > "$OUT/scan.log" 2>&1
echo "scan_gpu exit $?"; grep -A16 "^summary" "$OUT/scan.log"
cp /tmp/scan/results.md "$OUT/scan.md"; cp /tmp/scan/results.json "$OUT/scan.json"
BWD=$(python3 scripts/bwd_verdict.py /tmp/scan/results.json)
echo "backward kernel for the model runs: $BWD"
export MEDSEGMAMBA_TRITON_BWD=$BWD
W=MedSegMamba/medsegmamba/weights/default.safetensors
timeout 90 python3 benchmarks/pipeline_bench.py --out /tmp/pipe --input .data/mni152_t1.nii.gz \
  --models "$W" --steps 16 32 --batch-sizes 0 4 --tilings focused --repeat 2 > "$OUT/pipeline.log" 2>&1
echo "pipeline_bench exit $?"; grep -A6 "^model " "$OUT/pipeline.log"
cp /tmp/pipe/results.csv "$OUT/pipeline.csv" 2>/dev/null
timeout 150 python3 benchmarks/model_gpu.py --out /tmp/model --iters 5 --variants ours+fusedGN \
  --no-channels-last > "$OUT/model.log" 2>&1
echo "model_gpu exit $?"; tail -n 14 "$OUT/model.log"
cp /tmp/model/results.json "$OUT/model.json" 2>/dev/null
date -u
ls -la "$OUT"
