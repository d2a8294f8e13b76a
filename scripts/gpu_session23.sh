#!/usr/bin/env bash
# Session 23, call 1 (issue #2): delta's bias and softplus inside the Gluon backward
# ($MEDSEGMAMBA_TRITON_BWD_DELTA=kernel, session 22, built for sm_90 but never run): its GPU tests
# (the walked gradients against float64 with it and without, with and without a bias or softplus);
# the paper network's eager training step at batch 8 with it and without; then the compiled step
# at batch 8 with each (no checks). ~8 min.
#   bash scripts/gpu_session23.sh $OUT
source "$(dirname "$0")/device_preamble.sh" "$@"
timeout 120 python3 -m pytest -q -p no:cacheprovider -m gpu Testing/ops/test_scan_along_paths.py \
  Testing/ops/test_scan_triton.py -k "gluon or walked" 2>&1 | grep -v "^E  *[+ ]" | tail -n 12
for where in outside kernel; do
  MEDSEGMAMBA_TRITON_BWD_DELTA=$where timeout 90 python3 benchmarks/model_gpu.py --no-check \
    --out "$OUT/train_eager_$where" --variants ours+fusedGN --no-channels-last --batches :8 2>&1 | quiet \
    | grep "| train\|Error" | sed "s/^/$where /"
done
date -u
for where in outside kernel; do
  MEDSEGMAMBA_TRITON_BWD_DELTA=$where timeout 170 python3 benchmarks/model_gpu.py --no-check \
    --out "$OUT/train_compiled_$where" --variants ours+compile --no-channels-last --batches :8 2>&1 | quiet \
    | grep "| train\|Error" | sed "s/^/$where /"
  date -u
done
