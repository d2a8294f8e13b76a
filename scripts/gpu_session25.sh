#!/usr/bin/env bash
# Session 25: the first of session 24's device work that the session's few machines allow, in order of
# what it decides. Issue #2: are the Gluon backward's split shared buffers ($MEDSEGMAMBA_TRITON_BWD_BUFFERS
# =split, 8 barriers a sub-chunk of 8 steps instead of 17, counted for sm_90 on the CPU) right and faster?
# 1. GPU tests of the Gluon backward and the walked gradients with split buffers (shared: the default, passed).
# 2. One paper-size scan's forward + backward at batch 8 (fp32, dB/dC atomic): shared / split.
# 3. The paper network's compiled training step at batch 8 (the target's figure): shared / split.
# 4. The same, eager (the pipeline's path).
# ~9 min. Text reports in $OUT. The rest of session 24's scripts (launches, ncu) follow if time allows.
#   bash scripts/gpu_session25.sh $OUT          (carry .whl)
source "$(dirname "$0")/device_preamble.sh" "$@"
timeout 150 python3 -m pytest -q -p no:cacheprovider -m gpu \
  Testing/ops/test_scan_along_paths.py Testing/ops/test_scan_triton.py -k "(gradients or backward) and split" 2>&1 | tail -n 3
date -u
for b in shared split; do
  MEDSEGMAMBA_TRITON_BWD_BUFFERS=$b timeout 60 python3 benchmarks/scan_bwd_gluon.py --out "$OUT/bwd_$b" \
    --batches 8 --bc atomic 2>&1 | grep "^{" | sed "s/^/$b /"; rm -rf "$OUT/bwd_$b"
done
date -u
for b in shared split; do
  MEDSEGMAMBA_TRITON_BWD_BUFFERS=$b timeout 150 python3 benchmarks/model_gpu.py --no-check \
    --out "$OUT/train_compiled_$b" --variants ours+compile --no-channels-last --batches :8 2>&1 | quiet \
    | grep "| train\|Error" | sed "s/^/$b /"
  rm -rf "$OUT/train_compiled_$b"
done
date -u
for b in shared split; do
  MEDSEGMAMBA_TRITON_BWD_BUFFERS=$b timeout 80 python3 benchmarks/model_gpu.py --no-check --out "$OUT/train_$b" \
    --variants ours+fusedGN --no-channels-last --batches :8 2>&1 | quiet | grep "| train\|Error" | sed "s/^/$b /"
  rm -rf "$OUT/train_$b"
done
date -u
