#!/usr/bin/env bash
# Training throughput of the default model against the batch size, one GPU. The default model trains
# at ~8 iterations/s at batch 4 = 33 patches/s, while the 40x larger paper network runs one patch in
# ~150 ms: the small network waits on kernel launches, so a larger batch may give more patches per
# second for the same launches. If it does, the default model learns more per GPU-minute (issue #6).
#   bash scripts/gpu_train_throughput.sh $OUT [SPEC="4:500 8:300 16:200"]
# SPEC: batch:iterations pairs. Each batch size trains from scratch (no resume: nothing to carry but
# the label maps) for its iterations; the table averages the log rows after the first 100
# iterations (warm-up, Triton compilation). The first version of this script stopped on minutes,
# which count the set-up, and got no steady rows (session 6, call 2). Carry .data/label_maps, .whl.
source "$(dirname "$0")/device_preamble.sh" "$@"
SPEC=${2:-4:500 8:300 16:200}
for pair in $SPEC; do
  B=${pair%%:*}; N=${pair##*:}
  python3 -m medsegmamba.train.command --config configs/default.json --data .data/label_maps \
    --resume "" --out "/tmp/tp$B" --batch-size "$B" --max-iters "$N" --max-minutes 5 --val-every 1000000 \
    --ckpt-every 1000000 --log-every 10 > "$OUT/train_b$B.txt" 2>&1 || echo "batch $B failed (exit $?)"
done
python3 - "$SPEC" <<'PY' | tee "$OUT/throughput.md"
import json, sys
print("| batch | iterations/s | patches/s | log rows |\n|---:|---:|---:|---:|")
for pair in sys.argv[1].split():
    b = pair.split(":")[0]
    try:
        rows = [json.loads(l) for l in open(f"/tmp/tp{b}/log.jsonl")]
    except OSError:
        print(f"| {b} | failed | | |"); continue
    steady = [r for r in rows if r.get("kind") == "train" and r.get("it", 0) > 100]
    if not steady:
        print(f"| {b} | no steady rows | | |"); continue
    ips = sum(r["it_per_s"] for r in steady) / len(steady)
    pps = sum(r["patches_per_s"] for r in steady) / len(steady)
    print(f"| {b} | {ips:.2f} | {pps:.1f} | {len(steady)} |")
PY
date -u
