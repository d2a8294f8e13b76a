#!/usr/bin/env bash
# Session 10: the scan backward's new "lanes" tile body against the default "scan" body, one H100,
# ~5 min. "lanes" lays a program's states out (NH, channels, NL) on one warp, so that its sums over
# states and over channels need no shared memory or barriers, takes delta through its softplus
# outside the kernel and shares each step's exp(dl A) between the states and the adjoint.
# (a) one scan's forward + backward, fp32, chunked and parallel/auto backward, paper size (8 x 1024
# channels, N 64, L 1728) at batch 1 and 8, default model's (8 x 128, N 16) at 16 and 4, and the
# lanes body at other launches (block_d, T, warps); (b) both bodies' errors against float64 at the
# paper's size, batch 1, fp32 (bf16 last); (c) the paper network's and the default model's training
# step, auto backward, with each body. Then the registers of both as built for sm_90 on that machine.
# Results in $OUT/results.jsonl, results.md and resources.md.
#   bash scripts/gpu_session10_bwd.sh $OUT          (carries nothing)
# Ran at tree 354f463. The lanes body was slower at every size and left the package after this
# call (benchmarks/results/2026-12-06-h100-s10/README.md); check out 354f463 to rerun it.
source "$(dirname "$0")/device_preamble.sh" "$@"
python3 -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__)"
timeout 420 python3 benchmarks/scan_bwd_segments.py --out "$OUT" --bodies scan,lanes \
  --lanes-launches 8,2,1/16,1,1/8,4,1/16,2,2 2>&1 | grep -v '^{' | tail -n 50
echo "exit ${PIPESTATUS[0]}"
timeout 60 python3 benchmarks/kernel_resources.py --kernels bwd-chunked,bwd-lanes --as-launched > "$OUT/resources.md" 2>&1
cat "$OUT/resources.md"
date -u
