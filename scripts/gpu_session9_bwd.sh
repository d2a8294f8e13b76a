#!/usr/bin/env bash
# Session 9: the scan backward's tile bodies side by side in one process, one H100, ~5 min:
# "steps" (each tile's steps unrolled on (N, D) states, 8 warps under a 128-register cap: no spills
# as launched, two 8-warp programs per multiprocessor) against "scan" (associative scans over
# (T, N, D) tiles, 255 registers, 4 warps), both through $MEDSEGMAMBA_TRITON_BWD_VARIANT.
# (a) one scan's forward + backward, fp32, chunked and parallel/auto backward, paper size (8 x 1024
# channels, N 64, L 1728) at batch 1 and 8, default model's (8 x 128, N 16) at 16 and 4; (b) both
# bodies' errors against float64 at the paper's size, batch 1, fp32 (bf16 last); (c) the paper
# network's and the default model's training step, auto backward, with each body. Then the
# registers of both as built for sm_90 by this machine's Triton. Results in $OUT/results.jsonl,
# results.md and resources.md.
#   bash scripts/gpu_session9_bwd.sh $OUT          (carries nothing)
source "$(dirname "$0")/device_preamble.sh" "$@"
python3 -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__)"
timeout 300 python3 benchmarks/scan_bwd_segments.py --out "$OUT" --bodies steps,scan 2>&1 | grep -v '^{' | tail -n 40
echo "exit ${PIPESTATUS[0]}"
timeout 40 python3 benchmarks/kernel_resources.py --kernels bwd-chunked,bwd-steps --as-launched > "$OUT/resources.md" 2>&1
cat "$OUT/resources.md"
date -u
