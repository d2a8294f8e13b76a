#!/usr/bin/env bash
# Session 18, call 5 (issue #2): the fused depthwise convolution's GPU tests with a float64
# reference for the gradients (call 4's float32 cuDNN reference failed by an amount the test did
# not print). ~1 min.
#   bash scripts/gpu_session18e.sh $OUT
source "$(dirname "$0")/device_preamble.sh" "$@"
timeout 100 python3 -m pytest -q -p no:cacheprovider -m gpu Testing/ops/test_depthwise_conv.py 2>&1 | grep -v "^E  *[+ ]" | tail -n 25
date -u
