#!/usr/bin/env bash
# Train the coarse locator (configs/locator.json: the default model's architecture on 3 mm patches,
# 288 mm wide, so that one patch holds a whole head) on one GPU. The first run starts from the
# default model's checkpoint; later runs resume training/locator/last.safetensors.
#   bash scripts/gpu_session7_locator.sh $OUT [MINUTES=7] [more train flags, e.g. --max-iters N]
# Carry .data/label_maps, .data/fsaverage and .whl. Brings back 7 files; publish them with
# python3 -m medsegmamba.train.publish DIR --name locator
source "$(dirname "$0")/device_preamble.sh" "$@"
MIN=${2:-7}
shift $(( $# >= 2 ? 2 : $# ))
RESUME=training/locator/last.safetensors
[ -f "$RESUME" ] || RESUME=training/default/last.safetensors
mkdir -p /tmp/loc
python3 -m medsegmamba.train.command --config configs/locator.json --data .data/label_maps \
  --fsaverage .data/fsaverage --resume "$RESUME" --out /tmp/loc --max-minutes "$MIN" --export "$@" \
  2>&1 | tee /tmp/loc/train.txt | grep -v "^$" | tail -n 12
cp /tmp/loc/{last.safetensors,last.optim-0.safetensors,last.optim-1.safetensors,model_fp16.safetensors,log.jsonl,summary.json,train.txt} "$OUT/" 2>/dev/null
date -u
ls -la "$OUT"
