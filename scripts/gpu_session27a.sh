#!/usr/bin/env bash
# For session 27, issue #2 (written in session 26, whose device calls all got no machine): the Gluon backward
# without the steps whose states nothing reads, scripts/patches/bwd_skip_unread_steps.patch (pass A skips
# each chunk's last sub-chunk, pass B's recomputation each sub-chunk's last pair: 2.6 exponentials an
# element-step instead of 3 at CHUNK 64, SUB 8; built for sm_90 on the CPU, never run). Applied here to
# this call's copy of the tree only; main keeps the kernel until this shows it right and faster.
# 1. GPU tests of the scan's gradients (Gluon backward, walked and not) against float64 loops, patched.
# 2. One paper-size scan's forward + backward at batch 8 (fp32, dB/dC atomic): patched (with the launch
#    4,4,4,4,168,8 too: 4 channels a thread, 19.6 instructions an element-step in the loop over pairs
#    against the default's 23.8, three programs a multiprocessor, kernel_resources.py) and unpatched.
# 3. The paper network's compiled training step at batch 8, patched: ours+compile contiguous, then
#    ours+fusedGN+compile in channels_last_3d (gpu_session26a.sh's question); then ours+compile unpatched.
# ~9 min.   bash scripts/gpu_session27a.sh $OUT          (carry .whl)
source "$(dirname "$0")/device_preamble.sh" "$@"
F=MedSegMamba/medsegmamba/ops/triton/scan_gluon.py
cp "$F" /tmp/scan_gluon_before.py
patch -p1 --forward < scripts/patches/bwd_skip_unread_steps.patch || { echo "the patch did not apply"; exit 1; }
cp "$F" /tmp/scan_gluon_after.py
timeout 150 python3 -m pytest -q -p no:cacheprovider -m gpu \
  Testing/ops/test_scan_along_paths.py Testing/ops/test_scan_triton.py -k "gradients or backward" 2>&1 | tail -n 3
date -u
for v in after before; do
  cp "/tmp/scan_gluon_$v.py" "$F"
  L=default; [ $v = after ] && L="default 4,4,4,4,168,8"
  timeout 100 python3 benchmarks/scan_bwd_gluon.py --out "$OUT/bwd_$v" --batches 8 --bc atomic --launches $L 2>&1 \
    | grep "^{" | sed "s/^/$v /"; rm -rf "$OUT/bwd_$v"
done
date -u
cp /tmp/scan_gluon_after.py "$F"
timeout 130 python3 benchmarks/model_gpu.py --no-check --out "$OUT/t" --variants ours+compile \
  --no-channels-last --batches :8 2>&1 | quiet | grep "| train\|Error" | sed "s/^/after /"
timeout 130 python3 benchmarks/model_gpu.py --no-check --out "$OUT/t" --variants ours+fusedGN+compile \
  --only-channels-last --batches :8 2>&1 | quiet | grep "| train\|Error" | sed "s/^/after /"
date -u
cp /tmp/scan_gluon_before.py "$F"
timeout 130 python3 benchmarks/model_gpu.py --no-check --out "$OUT/t" --variants ours+compile \
  --no-channels-last --batches :8 2>&1 | quiet | grep "| train\|Error" | sed "s/^/before /"
rm -rf "$OUT/t"
date -u
