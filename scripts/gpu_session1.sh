#!/usr/bin/env bash
# Device call 1 (2026-11-23): check + time the Triton scan, then train the default model.
#   bash scripts/gpu_session1.sh $OUT TRAIN_MINUTES
# Small logs and tables go into one tarball (the device returns at most 8 files).
set -uo pipefail
OUT=${1:?OUT}; MIN=${2:-6}
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD/MedSegMamba"
mkdir -p "$OUT/scan" "$OUT/train"
python3 -c "import torch, triton; print(torch.__version__, triton.__version__, torch.cuda.get_device_name())"
timeout 170 python3 benchmarks/scan_gpu.py --out "$OUT/scan" > "$OUT/scan/scan.log" 2>&1
echo "scan_gpu exit $?"; tail -n 40 "$OUT/scan/scan.log"
bash scripts/train_gpu.sh "$OUT/train" "$MIN"
echo "train exit $?"
cd "$OUT" && tar czf logs.tar.gz scan train/*.json* train/*.txt 2>/dev/null
rm -rf "$OUT/scan"; rm -f "$OUT"/train/*.json* "$OUT"/train/*.txt
ls -la "$OUT" "$OUT/train"
