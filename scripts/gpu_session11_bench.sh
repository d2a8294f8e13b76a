#!/usr/bin/env bash
# Session 11: the shipped default model end to end on one GPU, with and without the mirrored pass
# (on by default since session 11), at step 16 (a GPU's default) and step 32, on the MNI152 template
# the demo segments. Carry .whl and .data/mni (nilearn's bundled MNI152 T1 copied there, since the
# device machine has no nilearn). ~1-2 min. JSON per case and the printed tables in $OUT.
#   bash scripts/gpu_session11_bench.sh $OUT
source "$(dirname "$0")/device_preamble.sh" "$@"
for step in 16 32; do
  for tta in --no-tta --tta; do
    python3 -c "import sys; from medsegmamba.cli import main; sys.exit(main())" benchmark .data/mni/mni152.nii.gz \
      --model default --device cuda --step "$step" "$tta" --repeat 5 --json-out "$OUT/step${step}${tta}.json" \
      2>&1 | tee -a "$OUT/bench.txt" | tail -n 8
  done
done
date -u
