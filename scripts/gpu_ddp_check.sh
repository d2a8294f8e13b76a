#!/usr/bin/env bash
# Issue #6's multi-GPU check, for the two-GPU kind (nvidia-h200-x2): the default recipe under
# torchrun on 2 GPUs (NCCL) for a few minutes from the committed checkpoint, then on 1 GPU for as
# long, to compare patches/s; summary.json's replica_spread must be 0.0. Publishes nothing.
#   bash scripts/gpu_ddp_check.sh $OUT [MINUTES_EACH=3]      (carry .data/label_maps and .whl)
source "$(dirname "$0")/device_preamble.sh" "$@"
MIN=${2:-3}
COMMON=(--config configs/default.json --data .data/label_maps --resume training/default/last.safetensors
        --max-minutes "$MIN" --ce-until 0)
torchrun --nproc_per_node 2 -m medsegmamba.train.command "${COMMON[@]}" --out /tmp/ddp2 > "$OUT/ddp2.txt" 2>&1
echo "2 GPUs exit $?"; tail -n 3 "$OUT/ddp2.txt"
python3 -m medsegmamba.train.command "${COMMON[@]}" --out /tmp/ddp1 > "$OUT/ddp1.txt" 2>&1
echo "1 GPU exit $?"; tail -n 3 "$OUT/ddp1.txt"
for n in 1 2; do
  cp /tmp/ddp$n/summary.json "$OUT/summary$n.json" 2>/dev/null
  cp /tmp/ddp$n/log.jsonl "$OUT/log$n.jsonl" 2>/dev/null
  python3 - "$OUT/log$n.jsonl" "$OUT/summary$n.json" <<'PY'
import json, sys
rows = [json.loads(x) for x in open(sys.argv[1]) if '"train"' in x][5:]  # skip the warm-up
s = json.load(open(sys.argv[2]))
pps = sum(r["patches_per_s"] for r in rows) / max(1, len(rows))
print(f"ranks={s.get('ranks')} replica_spread={s.get('replica_spread')} patches/s={pps:.1f} "
      f"iterations={s['iterations_this_run']}")
PY
done
date -u
