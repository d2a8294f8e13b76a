#!/usr/bin/env bash
# Session 7: the chunked backward's dB/dC sums, atomic adds (the default) against a slice per
# channel block summed afterwards ($MEDSEGMAMBA_TRITON_BC=partial), one H100, ~7 min (issue #2):
# the scan alone at the paper's size (forward + backward, scan_gpu.py timings), the paper network's
# training step (model_gpu.py), the default model's training throughput at batch 16. Brings back 7 files.
#   bash scripts/gpu_session7_bc.sh $OUT     (carry .data/label_maps and .whl)
source "$(dirname "$0")/device_preamble.sh" "$@"
for BC in atomic partial; do
  export MEDSEGMAMBA_TRITON_BC=$BC
  timeout 120 python3 benchmarks/scan_gpu.py --out /tmp/scan_$BC --parts accuracy,timings > /tmp/scan_$BC.log 2>&1
  echo "scan $BC: exit $?"; grep -iE "fwd\+bwd|forward \+ backward|bwd" /tmp/scan_$BC/results.md | head -8
  cp /tmp/scan_$BC/results.md "$OUT/scan_$BC.md"
  timeout 150 python3 benchmarks/model_gpu.py --out /tmp/model_$BC --variants ours+fusedGN --no-channels-last \
    > /tmp/model_$BC.log 2>&1
  echo "model $BC: exit $?"; grep "train" /tmp/model_$BC/results.md
  cp /tmp/model_$BC/results.md "$OUT/model_$BC.md"
  mkdir -p /tmp/tp_$BC && bash scripts/gpu_train_throughput.sh /tmp/tp_$BC "16:200" > /dev/null 2>&1
  echo "default model training, batch 16, $BC:"; tail -n 1 /tmp/tp_$BC/throughput.md
  cp /tmp/tp_$BC/throughput.md "$OUT/throughput_$BC.md"
done
date -u
