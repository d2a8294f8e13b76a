#!/usr/bin/env bash
# Session 6, last call (~4 min): the chunked forward's new default (T=8 at N=64) checked against the
# float64 reference and timed (scan_gpu.py accuracy + timings), then the paper network end to end
# at step 32 again with it (issue #3).
#   bash scripts/gpu_session6_verify.sh $OUT     (carry .data/mni152_t1.nii.gz and .whl)
source "$(dirname "$0")/device_preamble.sh" "$@"
timeout 200 python3 benchmarks/scan_gpu.py --out /tmp/scan --parts accuracy,timings > /tmp/scan.log 2>&1
echo "scan_gpu exit $?"; cp /tmp/scan/results.md "$OUT/scan.md"; cp /tmp/scan/results.json "$OUT/scan.json"
grep -E "chunked|summary|target" "$OUT/scan.md" | head -30
W=MedSegMamba/medsegmamba/weights/default.safetensors
timeout 100 python3 benchmarks/pipeline_bench.py --out /tmp/pipe --input .data/mni152_t1.nii.gz \
  --models paper --locator "$W" --steps 32 --batch-sizes 16 8 --tilings focused --repeat 9 > "$OUT/pipeline.log" 2>&1
echo "pipeline exit $?"; tail -n 3 "$OUT/pipeline.log"; cp /tmp/pipe/results.csv "$OUT/pipeline.csv"
date -u
