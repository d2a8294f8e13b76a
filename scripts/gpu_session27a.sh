#!/usr/bin/env bash
# For session 27, issue #2 (written in session 26, whose device calls all got no machine): two changes to the
# Gluon backward, as patches applied to this call's copy of the tree only; main keeps its kernel until this
# shows them right and faster. Built for sm_90 on the CPU (Triton 3.6), never run:
# - p1, scripts/patches/bwd_skip_unread_steps.patch: pass A skips each chunk's last sub-chunk, pass B's
#   recomputation each sub-chunk's last pair (2.6 exponentials an element-step instead of 3);
# - p2, scripts/patches/bwd_lane_sums.patch (over p1): dB and dC summed per step in TPW_D / 2 groups of
#   channels, the groups added once per sub-chunk: the loop over pairs of steps 362 -> 298 instructions,
#   64 -> 32 shuffles (default launch), 47 KB of shared memory, still four programs a multiprocessor;
#   "p2full" keeps a group a lane (no shuffles for dB, dC; 64 KB, three programs).
# 1. GPU tests of the scan's gradients (Gluon backward, walked and not) against float64 loops, on p1+p2.
# 2. One paper-size scan's forward + backward at batch 8 (fp32, dB/dC atomic), each of before, p1, p2,
#    p2full, at the default launch and at 4,4,4,4,168,8 (4 channels a thread; loop over pairs 602 -> 539).
# 3. The paper network's compiled training step at batch 8 on p1+p2: ours+compile contiguous, then
#    ours+fusedGN+compile in channels_last_3d (gpu_session26a.sh's question); then ours+compile before.
# ~10 min.   bash scripts/gpu_session27a.sh $OUT          (carry .whl)
source "$(dirname "$0")/device_preamble.sh" "$@"
F=MedSegMamba/medsegmamba/ops/triton/scan_gluon.py
cp "$F" /tmp/k_before.py
patch -p1 --forward < scripts/patches/bwd_skip_unread_steps.patch && cp "$F" /tmp/k_p1.py \
  && patch -p1 --forward < scripts/patches/bwd_lane_sums.patch && cp "$F" /tmp/k_p2.py \
  || { echo "a patch did not apply"; exit 1; }
sed 's|KEEP: gl.constexpr = TPW_D // 2 if TPW_D > 1 else 1|KEEP: gl.constexpr = TPW_D|' /tmp/k_p2.py > /tmp/k_p2full.py
cmp -s /tmp/k_p2.py /tmp/k_p2full.py && echo "p2full: the KEEP line was not found"
timeout 150 python3 -m pytest -q -p no:cacheprovider -m gpu \
  Testing/ops/test_scan_along_paths.py Testing/ops/test_scan_triton.py -k "gradients or backward" 2>&1 | tail -n 3
date -u
for v in p2 p1 before p2full; do
  cp "/tmp/k_$v.py" "$F"
  timeout 100 python3 benchmarks/scan_bwd_gluon.py --out "$OUT/bwd_$v" --batches 8 --bc atomic \
    --launches default 4,4,4,4,168,8 2>&1 | grep "^{" | sed "s/^/$v /"; rm -rf "$OUT/bwd_$v"
done
date -u
cp /tmp/k_p2.py "$F"
timeout 130 python3 benchmarks/model_gpu.py --no-check --out "$OUT/t" --variants ours+compile \
  --no-channels-last --batches :8 2>&1 | quiet | grep "| train\|Error" | sed "s/^/p2 /"
timeout 130 python3 benchmarks/model_gpu.py --no-check --out "$OUT/t" --variants ours+fusedGN+compile \
  --only-channels-last --batches :8 2>&1 | quiet | grep "| train\|Error" | sed "s/^/p2 /"
date -u
cp /tmp/k_before.py "$F"
timeout 130 python3 benchmarks/model_gpu.py --no-check --out "$OUT/t" --variants ours+compile \
  --no-channels-last --batches :8 2>&1 | quiet | grep "| train\|Error" | sed "s/^/before /"
rm -rf "$OUT/t"
date -u
