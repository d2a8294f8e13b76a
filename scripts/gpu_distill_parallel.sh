#!/usr/bin/env bash
# Issue #5's arms side by side on one GPU (written 2026-11-23, session 5). The default model and its
# students are small: one training process leaves the H100 mostly idle between its kernel launches
# (7 iterations/s at batch 4 for a 2.2 M-parameter network), so four arms at once under MPS cost
# about the device time of one and a half (the probe: 11 steps/s in all, against 7 for one arm).
# Each call gives every arm the same wall time (CAP_SECONDS, all running together) or STEPS more
# steps, whichever ends first; the cosine schedule of a call runs over its STEPS, so an arm that the
# cap stops has not annealed. Latency is measured again afterwards, one arm at a time.
#   bash scripts/gpu_distill_parallel.sh $OUT probe            # ~4 min: steps/s of each arm with
#                                                              # the others running, without and
#                                                              # with MPS (when the machine has it)
#   bash scripts/gpu_distill_parallel.sh $OUT run STEPS [CAP_SECONDS=480] [mps|-] [RESUME]
# Carry .data/label_maps, .data/fsaverage and .whl. `run` trains into /tmp/arms-<k> on the device (k
# the first unused; printed) and brings back $OUT/results.{json,md} (all arms merged, latency
# re-measured) and $OUT/arms.tar.part-* (each arm's folder: results, weights, log; `cat` joins them).
# RESUME, a folder holding an earlier call's arms (the parts unpacked into .data/arms and carried:
# /tmp does not outlive a machine, and the next call may get a fresh one) continues every arm
# from there, STEPS more. Session 5 ran `run 2500 470 mps`, then `run 2500 470 mps .data/arms`
# (docs/distillation/2026-11-23-s5.md).
source "$(dirname "$0")/device_preamble.sh" "$@"
MODE=${2:?MODE probe|run}
T=MedSegMamba/medsegmamba/weights/default.safetensors
X=(python3 scripts/distill_experiment.py --teacher "$T" --batch 4)

mps_start() {
  export CUDA_MPS_PIPE_DIRECTORY=/tmp/mps CUDA_MPS_LOG_DIRECTORY=/tmp/mps-log
  mkdir -p /tmp/mps /tmp/mps-log
  command -v nvidia-cuda-mps-control > /dev/null && nvidia-cuda-mps-control -d && echo "MPS on"
}
mps_stop() { echo quit | nvidia-cuda-mps-control 2>/dev/null; unset CUDA_MPS_PIPE_DIRECTORY CUDA_MPS_LOG_DIRECTORY; }

# arms side by side: "name:arms" pairs; each writes $1/<name>/ and its log
side_by_side() {
  local dir=$1 steps=$2 cap=$3; shift 3
  local pids=() spec
  for spec in "$@"; do
    local name=${spec%%:*} from=()
    mkdir -p "$dir/$name"
    [ -n "$RESUME" ] && from=(--resume "$RESUME/$name")
    "${X[@]}" --out "$dir/$name" --arms "${spec#*:}" --steps "$steps" --kd-warmup 200 \
      --max-seconds-per-arm "$cap" "${from[@]}" > "$dir/$name/log.txt" 2>&1 &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p" || echo "an arm failed (exit $?)"; done
}

rates() {  # steps per second of each arm of a side-by-side run
  python3 - "$1" <<'PY'
import json, pathlib, sys
for f in sorted(pathlib.Path(sys.argv[1]).glob("*/results.json")):
    for name, a in json.loads(f.read_text())["arms"].items():
        if a["train_s"]:
            print(f"  {name}: {a['steps']} steps in {a['train_s']:.0f} s = {a['steps'] / a['train_s']:.2f}/s")
PY
}

RESUME=""
if [ "$MODE" = probe ]; then
  for m in plain mps; do
    [ $m = mps ] && { mps_start || { echo "no MPS here"; break; }; }
    D=/tmp/probe-$m
    timeout 120 python3 -m medsegmamba.train.command --config configs/default.json --data .data/label_maps \
      --resume "" --out "$D-train" --max-minutes 1.0 --ce-until 0 \
      --max-iters 30100 > "$D-train.txt" 2>&1 &
    side_by_side "$D" 100000 60 student:student reco:reco self:self kan:kan
    wait
    echo "== $m: four arms side by side (60 s each), steps/s"; rates "$D"
    python3 -c "import json,sys; s=json.load(open(sys.argv[1])); print(f'  default-model training beside them: \
{s[\"iterations_this_run\"]} iterations in {s[\"minutes\"]:.2f} min = {s[\"iterations_this_run\"]/s[\"minutes\"]/60:.2f}/s')" \
      "$D-train/summary.json" || tail -n 5 "$D-train.txt"
    tail -n 3 "$D"/*/log.txt | grep -i "error\|Traceback" || true
    [ $m = mps ] && mps_stop
  done
  date -u
  exit 0
fi

STEPS=${3:?STEPS}; CAP=${4:-480}; RESUME=${6:-}
[ -z "$RESUME" ] || [ -f "$RESUME/a/results.json" ] || { echo "RESUME $RESUME: no earlier arms there (a fresh machine?)"; exit 2; }
[ "${5:-}" = mps ] && { mps_start || echo "no MPS: arms time-share the GPU"; }
k=1; while [ -e "/tmp/arms-$k" ]; do k=$((k + 1)); done
D=/tmp/arms-$k; echo "arms in $D${RESUME:+, resumed from $RESUME}"
side_by_side "$D" "$STEPS" "$CAP" a:teacher,student reco:reco self:self kan:kan
[ "${5:-}" = mps ] && mps_stop
rates "$D"
"${X[@]:0:2}" --out "$D/all" --merge "$D"/{a,reco,self,kan} > /dev/null \
  && "${X[@]}" --out "$D/all" --retime > "$D/retime.txt" 2>&1 \
  || { echo "merge/retime failed"; tail -n 20 "$D/retime.txt"; }
cp "$D/all/results.json" "$D/all/results.md" "$OUT/" 2>/dev/null
tar -C "$D" -cf - a reco self kan retime.txt | split -b 15M - "$OUT/arms.tar.part-"
cat "$OUT/results.md" 2>/dev/null | head -n 8
grep -h "stopping at step" "$D"/*/log.txt || true
date -u
ls -la "$OUT"
