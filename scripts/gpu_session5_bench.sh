#!/usr/bin/env bash
# Issues #2 and #3 on the GPU, next session (written 2026-11-23, session 4; not yet run), ~4 min:
# where the paper network's time goes (benchmarks/profile_gpu.py), and the paper network end to end
# with focused tiling, the shipped default finding the box (--locator), against the 1.5 s / 0.5 s targets.
#   bash scripts/gpu_session5_bench.sh $OUT      (carry .data/mni152_t1.nii.gz and .whl)
source "$(dirname "$0")/device_preamble.sh" "$@"
timeout 150 python3 benchmarks/profile_gpu.py --out /tmp/prof > "$OUT/profile.log" 2>&1
echo "profile_gpu exit $?"; grep -A9 "^| kind" "$OUT/profile.log" | head -24
cp /tmp/prof/results.md "$OUT/profile.md" 2>/dev/null; cp /tmp/prof/results.json "$OUT/profile.json" 2>/dev/null
W=MedSegMamba/medsegmamba/weights/default.safetensors
timeout 240 python3 benchmarks/pipeline_bench.py --out /tmp/pipe --input .data/mni152_t1.nii.gz \
  --models paper "$W" --locator "$W" --steps 16 32 --batch-sizes 0 8 --tilings focused --repeat 2 \
  > "$OUT/pipeline.log" 2>&1
echo "pipeline_bench exit $?"; grep -A12 "^model " "$OUT/pipeline.log"
cp /tmp/pipe/results.csv "$OUT/pipeline.csv" 2>/dev/null
date -u
