#!/usr/bin/env bash
# Train the default model on the label maps in .data/ for a few minutes, on one GPU.
#   bash scripts/train_gpu.sh OUT [MINUTES=9] [extra `medsegmamba train` flags...]
# Resumes from training/default/last.safetensors when present; writes to OUT: log.jsonl,
# last.safetensors + last.optim-*.safetensors (resumable), model_fp32/fp16.safetensors,
# summary.json. Needs .data/label_maps (and .data/fsaverage for real-scan validation):
# python3 scripts/prepare_training_data.py /work/shared/data. Installs nothing.
set -euo pipefail
OUT=${1:?usage: train_gpu.sh OUT [MINUTES] [flags...]}
MINUTES=${2:-9}
shift $(( $# >= 2 ? 2 : 1 ))
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
export PYTHONPATH="$ROOT/MedSegMamba${PYTHONPATH:+:$PYTHONPATH}"
mkdir -p "$OUT"
FS=()
[ -d .data/fsaverage ] && FS=(--fsaverage .data/fsaverage)
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
python3 -m medsegmamba.train.command --config configs/default.json --data .data/label_maps \
  "${FS[@]}" --resume training/default/last.safetensors --out "$OUT" \
  --max-minutes "$MINUTES" --export "$@" 2>&1 | tee "$OUT/train.txt" | grep -v "^$" | tail -n 40
python3 - "$OUT" <<'PY'
import json, sys
s = json.load(open(sys.argv[1] + "/summary.json"))
v, e = s.get("final_val", {}), s.get("export", {}).get("val_fp16_weights", {})
print(f"SUMMARY device={s['device']} params={s['params']/1e6:.2f}M iterations={s['iterations']} "
      f"(+{s['iterations_this_run']}) minutes={s['minutes']:.1f} synth_dice={v.get('synth_dice')} "
      f"fsaverage_dice={v.get('fsaverage_dice')} fp16: synth={e.get('synth_dice')} "
      f"fsaverage={e.get('fsaverage_dice')}")
PY
