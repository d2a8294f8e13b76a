# Sourced by the device-call scripts (`source "$(dirname "$0")/device_preamble.sh" "$@"`): strict
# mode, OUT from $1, unbuffered Python, this checkout's package first on the path, nibabel from a
# carried wheel (.whl/, the device machine has no nibabel and no internet), the GPU named.
set -uo pipefail
OUT=${1:?OUT}
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD/MedSegMamba${PYTHONPATH:+:$PYTHONPATH}"
if ! python3 -c "import nibabel" 2>/dev/null && compgen -G ".whl/*.whl" > /dev/null; then
  # a second script of the same call finds it installed already
  [ -d /tmp/site/nibabel ] || python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
    --target /tmp/site .whl/*.whl
  [ -d /tmp/site/nibabel ] && export PYTHONPATH="$PYTHONPATH:/tmp/site"
fi
mkdir -p "$OUT"
date -u
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true

# quiet: drops the profiler's and PyTorch's warnings, traceback frames and blank lines from a stream
quiet() { grep -v "^USDT\|profiler_st\|UserWarning\|warn_once\|This call originates\|File \"\|if interpreting\|return _multi\|^ *$"; }

# ncu_profile NAME KERNEL_REGEX COMMAND...: Nsight Compute on the first launch of the kernel matching
# KERNEL_REGEX that COMMAND makes; leaves $OUT/NAME_details.txt and $OUT/NAME_sass.md (stall samples
# per SASS line, ncu_sass_summary.py) and prints their heads
ncu_profile() {
  local name=$1 kernel=$2 ncu
  shift 2
  ncu=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -n 1)
  timeout 150 "$ncu" --clock-control none --target-processes all --kernel-name "regex:$kernel" --launch-count 1 \
    --section SpeedOfLight --section Occupancy --section SchedulerStats --section WarpStateStats \
    --section InstructionStats --section ComputeWorkloadAnalysis --section SourceCounters \
    --export "$OUT/$name" "$@" > "$OUT/$name.log" 2>&1
  echo "ncu $name exit $?"; tail -n 2 "$OUT/$name.log"; rm -f "$OUT/$name.log"
  "$ncu" --import "$OUT/$name.ncu-rep" --page details > "$OUT/${name}_details.txt" 2>&1
  "$ncu" --import "$OUT/$name.ncu-rep" --page source --csv --print-source sass > "$OUT/$name.csv" 2>&1
  python3 benchmarks/ncu_sass_summary.py "$OUT/$name.csv" --top 30 > "$OUT/${name}_sass.md" 2>&1
  rm -f "$OUT/$name.csv" "$OUT/$name.ncu-rep"
  grep -i "duration\|issue slots\|warps per\|eligible\|cycles per issued\|pipe" "$OUT/${name}_details.txt" | head -n 16
  sed -n 1,24p "$OUT/${name}_sass.md"
}
