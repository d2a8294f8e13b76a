#!/usr/bin/env bash
# Session 26's patches to the Gluon backward (scripts/patches/), checked on the CPU: for each kernel (before,
# p1, p2, p3, p2full; made by gpu_patched_kernels.sh) a copy of the tree runs Testing/ops/test_gluon_emulated.py,
# the GPU tests' cases through the Gluon emulator against float64. It checks their arithmetic and addressing,
# not their barriers (the GPU tests, gpu_session27a.sh, do). Usage: bash scripts/check_patches_emulated.sh
set -uo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
git ls-files -z | xargs -0 tar -cf - | tar -xf - -C "$work"
(cd "$work" && source scripts/gpu_patched_kernels.sh) || exit 1
status=0
for k in before p1 p2 p3 p2full; do
  cp "/tmp/k_$k.py" "$work/MedSegMamba/medsegmamba/ops/triton/scan_gluon.py"
  out=$(cd "$work" && PYTHONPATH="$work/MedSegMamba" python3 -m pytest -q -p no:cacheprovider \
        Testing/ops/test_gluon_emulated.py 2>&1) || status=1
  echo "$k: $(tail -n 1 <<< "$out")"
done
exit $status
