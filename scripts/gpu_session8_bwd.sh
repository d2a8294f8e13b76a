#!/usr/bin/env bash
# Session 8 (issue #2): the segment-parallel scan backward against the chunked one, one H100, ~2 min:
# scan forward + backward at the paper's and the default model's sizes over segment counts, accuracy
# against float64, and both networks' training steps. Results stream into $OUT/results.jsonl.
#   bash scripts/gpu_session8_bwd.sh $OUT          (carries nothing)
source "$(dirname "$0")/device_preamble.sh" "$@"
python3 -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__)"
timeout 280 python3 benchmarks/scan_bwd_segments.py --out "$OUT" 2>&1 | grep -v '^{' | tail -n 40
echo "exit ${PIPESTATUS[0]}"
date -u
