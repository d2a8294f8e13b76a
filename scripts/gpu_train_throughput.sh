#!/usr/bin/env bash
# Written 2026-11-24 (session 5), not yet run. Training throughput of the default model against the
# batch size, one GPU. The default model trains at ~7 iterations/s at batch 4 = 28 patches/s, while
# the 40x larger paper network runs one patch in ~150 ms: the small network waits on kernel launches,
# so a larger batch may give more patches per second for the same launches. If it does, the default
# model and the students learn more per GPU-minute (issues #5, #6).
#   bash scripts/gpu_train_throughput.sh $OUT [MINUTES_EACH=1.5] [BATCH_SIZES="4 8 16"]
# Each batch size trains from scratch (no resume: nothing to carry but the label maps) for
# MINUTES_EACH; the table is the steady state (the log rows after the first minute's warm-up).
# Carry .data/label_maps and .whl. ~2 min per batch size.
source "$(dirname "$0")/device_preamble.sh" "$@"
MIN=${2:-1.5}; SIZES=${3:-4 8 16}
for B in $SIZES; do
  python3 -m medsegmamba.train.command --config configs/default.json --data .data/label_maps \
    --resume "" --out "/tmp/tp$B" --batch-size "$B" --max-minutes "$MIN" --val-every 1000000 \
    --ckpt-every 1000000 --log-every 10 > "$OUT/train_b$B.txt" 2>&1 || echo "batch $B failed (exit $?)"
done
python3 - "$SIZES" <<'PY' | tee "$OUT/throughput.md"
import json, sys
print("| batch | iterations/s | patches/s | log rows |\n|---:|---:|---:|---:|")
for b in sys.argv[1].split():
    try:
        rows = [json.loads(l) for l in open(f"/tmp/tp{b}/log.jsonl")]
    except OSError:
        print(f"| {b} | failed | | |"); continue
    steady = [r for r in rows if r.get("kind") == "train" and r.get("elapsed_s", 0) > 60]
    if not steady:
        print(f"| {b} | no steady rows | | |"); continue
    ips = sum(r["it_per_s"] for r in steady) / len(steady)
    pps = sum(r["patches_per_s"] for r in steady) / len(steady)
    print(f"| {b} | {ips:.2f} | {pps:.1f} | {len(steady)} |")
PY
date -u
