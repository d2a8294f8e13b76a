#!/usr/bin/env bash
# Session 23, call 2 (issue #2): (1) the Gluon backward's launch shapes never timed: 8 warps a
# program (4 or 8 state elements a thread, 24 or 16 warps a multiprocessor) against the default
# 4 warps x 8 elements, one paper-size scan at batch 8 with dB/dC added atomically; (2) where the
# compiled training step's time goes with the model and input in channels_last_3d (session 22
# timed it 5.2 ms a patch slower than contiguous at batch 8 but did not profile it): which
# kernels take the place of cuDNN's layout transforms (3.5 ms). $MEDSEGMAMBA_TRITON_BWD_DELTA
# passes through from the command line. ~6 min.
#   bash scripts/gpu_session23b.sh $OUT
source "$(dirname "$0")/device_preamble.sh" "$@"
timeout 150 python3 benchmarks/scan_bwd_gluon.py --out "$OUT/bwd_launches" --batches 8 --bc atomic \
  --launches default 2,4,2,8,80,8 2,4,2,8,96,8 2,4,4,8,128,8 2,8,4,4,128,8 4,4,2,4,128,16 2>&1 | quiet | tail -n 14
date -u
timeout 300 python3 benchmarks/profile_gpu.py --out "$OUT/profile_train_compiled_cl" --variant ours+compile \
  --modes train --train-batch 8 --channels-last yes --top 60 2>&1 | quiet | tail -n 20
date -u
