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
