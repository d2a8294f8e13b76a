#!/usr/bin/env bash
# Session 20 (issue #2), the last few device seconds: one paper-size scan's forward + backward at
# batch 1 with the chunked, sum and swap backwards (swap's gradients against the chunked one's),
# then the walked route's gradient tests with swap. ~2 min.
#   bash scripts/gpu_session20_micro.sh $OUT
source "$(dirname "$0")/device_preamble.sh" "$@"
timeout 70 python3 benchmarks/scan_bwd_gluon.py --out "$OUT/scan_bwd" --kernels sum swap --batches 1 2>&1 | tail -n 3
MEDSEGMAMBA_TRITON_BWD_GLUON_KERNEL=swap timeout 60 python3 -m pytest -q -p no:cacheprovider -m gpu \
  Testing/ops/test_scan_along_paths.py -k "walked_gradients" 2>&1 | grep -v "^E  *[+ ]" | tail -n 8
date -u
