#!/usr/bin/env bash
# Session 21, call 2 (issue #2): session 19's Gluon backward adding dB and dC atomically into one
# tensor (sum-atomic) instead of a slice per channel block summed after it: its gradient tests on
# the walked route; one paper-size scan's forward + backward with sum and sum-atomic; then the
# paper network's compiled training step (bf16, batch 8, no correctness checks) with the faster. ~5 min.
#   bash scripts/gpu_session21b.sh $OUT
source "$(dirname "$0")/device_preamble.sh" "$@"
quiet() { grep -v "^USDT\|profiler_st"; }
MEDSEGMAMBA_TRITON_BWD_GLUON_KERNEL=sum-atomic timeout 60 python3 -m pytest -q -p no:cacheprovider -m gpu \
  Testing/ops/test_scan_along_paths.py -k "walked_gradients and gluon" 2>&1 | grep -v "^E  *[+ ]" | tail -n 6
timeout 60 python3 benchmarks/scan_bwd_gluon.py --out "$OUT/scan_bwd" --kernels sum sum-atomic 2>&1 | tail -n 3
k=$(python3 -c "import json,sys; r=json.load(open(sys.argv[1]))['rows'][-1]; \
print(min(('sum', 'sum-atomic'), key=lambda k: r.get(f'gluon:{k}_ms', 1e9)))" "$OUT/scan_bwd/results.json" \
  2>/dev/null || echo sum)
date -u
MEDSEGMAMBA_TRITON_BWD_GLUON_KERNEL=$k timeout 240 python3 benchmarks/model_gpu.py --out "$OUT/train_compiled_$k" \
  --variants ours+compile --no-channels-last --batches :8 --no-check 2>&1 | quiet | grep "| train\|Error" \
  | sed "s/^/$k /"
date -u
