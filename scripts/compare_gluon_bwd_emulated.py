"""Compare versions of scan_gluon.py's backward on the CPU, through the Gluon emulator: the largest
difference of each gradient (du, ddelta, dA, dB, dC, dD) from the first file's, per case (the (B, D, L)
route at several launches, sub-chunk sizes and lengths). 0.0 everywhere means the same outputs to the bit.

    python3 scripts/compare_gluon_bwd_emulated.py /tmp/k_before.py /tmp/k_p1.py /tmp/k_p2.py
"""

import argparse
import importlib.util
import os
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "Testing" / "ops"))

from test_gluon_emulated import _checkpoints  # noqa: E402

from medsegmamba.ops.triton import scan_gluon  # noqa: E402
from medsegmamba.ops.triton import selective_scan as ts  # noqa: E402
from medsegmamba.ops.triton.gluon_emulator import emulate  # noqa: E402

# (batch, channels, groups, N, L, $MEDSEGMAMBA_TRITON_BWD_GLUON or None for the default launch)
CASES = [(2, 40, 2, 12, 131, None), (1, 32, 1, 64, 150, "4,4,2,4,128,2"), (1, 32, 1, 64, 150, "4,4,2,4,128,64"),
         (1, 16, 1, 64, 64, None), (1, 16, 1, 64, 65, "4,4,2,4,128,16")]


def backward_of(path: str):
    """scan_bwd_kernel of a copy of scan_gluon.py (imported inside the package, for its relative imports)."""
    spec = importlib.util.spec_from_file_location(f"medsegmamba.ops.triton._compared_{abs(hash(path))}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.scan_bwd_kernel


def gradients(case):
    batch, dim, groups, n, length, launch = case
    if launch:
        os.environ[ts.GLUON_BWD_ENV_VAR] = launch
    else:
        os.environ.pop(ts.GLUON_BWD_ENV_VAR, None)
    g = torch.Generator().manual_seed(length)
    r = lambda *s: torch.randn(*s, generator=g)  # noqa: E731
    u, dl = r(batch, dim, length), torch.nn.functional.softplus(r(batch, dim, length) - 1)
    A, D = -torch.rand(dim, n, generator=g) * 3 - 0.1, r(dim)
    B, C, dy = r(batch, groups, n, length), r(batch, groups, n, length), r(batch, dim, length)
    block_d, block_n = ts._gluon_bwd_config(n)[4:6]
    ckpt = _checkpoints(u, dl, A, B, groups, block_d, block_n)
    return ts._launch_bwd_gluon(dy, u, dl, A, B, C, D, None, False, ckpt)[:6]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="+", help="versions of scan_gluon.py; the first is the one compared against")
    args = ap.parse_args(argv)
    ts._check_device = lambda *tensors: None
    results = {}
    for path in args.files:
        scan_gluon.scan_bwd_kernel = emulate(backward_of(path))
        results[path] = [gradients(case) for case in CASES]
    first = args.files[0]
    print("| case (batch, channels, groups, N, L, launch) | " + " | ".join(args.files[1:]) + " |")
    print("|---|" + "---:|" * (len(args.files) - 1))
    for i, case in enumerate(CASES):
        diffs = [max((a - b).abs().max().item() for a, b in zip(results[first][i], results[p][i]))
                 for p in args.files[1:]]
        print(f"| {case} | " + " | ".join(f"{d:.3g}" for d in diffs) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
