#!/usr/bin/env bash
# Session 4's last, short call: the paper-size network's inference and training step with the
# chunked Triton backward, the default since session 3 (session 3's model_gpu figures used the
# sequential one).   bash scripts/gpu_session4_bench.sh $OUT
source "$(dirname "$0")/device_preamble.sh" "$@"
timeout 150 python3 benchmarks/model_gpu.py --out /tmp/model --iters 5 --variants ours+fusedGN \
  --no-channels-last > "$OUT/model.log" 2>&1
echo "model_gpu exit $?"; tail -n 14 "$OUT/model.log"
cp /tmp/model/results.json "$OUT/model.json" 2>/dev/null
date -u
