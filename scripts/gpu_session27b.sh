#!/usr/bin/env bash
# For session 27, issue #2, after gpu_session27a.sh: the paper network's compiled training step at batch 8
# with the Gluon backward at KERNEL ($2: p1, p2, p3 or p2full, gpu_patched_kernels.sh; default p3):
# ours+compile contiguous, ours+fusedGN+compile in channels_last_3d (gpu_session26a.sh's question), then
# ours+compile with the kernel before, all on one machine. ~7 min.
#   bash scripts/gpu_session27b.sh $OUT [KERNEL]          (carry .whl)
source "$(dirname "$0")/device_preamble.sh" "$@"
source "$(dirname "$0")/gpu_patched_kernels.sh"
K=${2:-p3}
# train_time VARIANT LAYOUT LABEL: model_gpu.py's training step at batch 8, its table line labelled
train_time() {
  timeout 130 python3 benchmarks/model_gpu.py --no-check --out "$OUT/t" --variants "$1" "$2" --batches :8 2>&1 \
    | quiet | grep "| train\|Error" | sed "s/^/$3 /"
}
cp "/tmp/k_$K.py" "$F"
train_time ours+compile --no-channels-last "$K"
train_time ours+fusedGN+compile --only-channels-last "$K"
date -u
cp /tmp/k_before.py "$F"
train_time ours+compile --no-channels-last before
rm -rf "$OUT/t"
date -u
