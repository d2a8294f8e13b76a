#!/usr/bin/env bash
# Session 18, call 7 (issue #2): the Gluon backward prototype ($MEDSEGMAMBA_TRITON_BWD=gluon), first
# run on a GPU: its tests against the float64 reference, then its time against the chunked one. ~1.5 min.
#   bash scripts/gpu_session18g.sh $OUT
source "$(dirname "$0")/device_preamble.sh" "$@"
timeout 70 python3 -m pytest -q -p no:cacheprovider -m gpu Testing/ops/test_scan_triton.py -k gluon 2>&1 \
  | grep -v "^E  *[+ ]" | tail -n 20
timeout 60 python3 benchmarks/scan_bwd_gluon.py --out "$OUT/bwd_gluon" 2>&1 | tail -n 6
date -u
