#!/usr/bin/env bash
# Session 7: torch.compile for training, one H100, ~8 min (issue #2's 30 ms per training patch; issue
# #6's default model, whose training waits on kernel launches): the paper network's and the default
# model's forward + backward, eager (the training loop's path) against compiled. Brings back 4 files.
#   bash scripts/gpu_session7_compile.sh $OUT     (carry .whl)
source "$(dirname "$0")/device_preamble.sh" "$@"
timeout 280 python3 benchmarks/model_gpu.py --out /tmp/paper --variants ours+fusedGN ours+compile \
  --no-channels-last --batches 8:1,2 > /tmp/paper.log 2>&1
echo "paper: exit $?"; grep "^|" /tmp/paper/results.md 2>/dev/null | tail -n 6 || tail -n 20 /tmp/paper.log
cp /tmp/paper/results.md "$OUT/compile_paper.md" 2>/dev/null; tail -n 40 /tmp/paper.log > "$OUT/compile_paper.log"
timeout 240 python3 benchmarks/model_gpu.py --out /tmp/small --default-model --variants ours+fusedGN ours+compile \
  --no-channels-last --batches 16:16 > /tmp/small.log 2>&1
echo "default model: exit $?"; grep "^|" /tmp/small/results.md 2>/dev/null | tail -n 4 || tail -n 20 /tmp/small.log
cp /tmp/small/results.md "$OUT/compile_default.md" 2>/dev/null; tail -n 40 /tmp/small.log > "$OUT/compile_default.log"
date -u
