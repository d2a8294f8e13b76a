"""One paper-size scan's forward + backward on the GPU, for Nsight Compute to profile the backward kernel.

    ncu --clock-control none --kernel-name regex:_scan_bwd_chunked --launch-skip 1 --launch-count 1 \\
        --section SpeedOfLight ... python3 benchmarks/scan_bwd_profile_driver.py

Two forward + backward calls (the first compiles and warms up); fp32, batch 1, 8 x 1024 channels,
N 64, L 1728, the default backward (auto: chunked, "scan" tile body). Session 10 (issue #2).
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "MedSegMamba"))

import torch  # noqa: E402
from scan_gpu import make_inputs  # noqa: E402

from medsegmamba.ops.triton.selective_scan import selective_scan_triton  # noqa: E402

ins = make_inputs(1, 8192, 8, 64, 1728, torch.device("cuda"), torch.float32)
leaves = {k: v.detach().clone().requires_grad_() for k, v in ins.items()}
dy = torch.randn_like(ins["u"])
for _ in range(2):
    selective_scan_triton(**leaves).backward(dy)
torch.cuda.synchronize()
print("done")
