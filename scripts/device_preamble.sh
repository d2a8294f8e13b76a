# Sourced by the device-call scripts (`source "$(dirname "$0")/device_preamble.sh" "$@"`): strict
# mode, OUT from $1, unbuffered Python, this checkout's package first on the path, the GPU named.
set -uo pipefail
OUT=${1:?OUT}
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD/MedSegMamba${PYTHONPATH:+:$PYTHONPATH}"
mkdir -p "$OUT"
date -u
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
