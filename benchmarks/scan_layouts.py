"""Does the scan care how its inputs lie in memory? One scan's forward and forward + backward on the GPU
with u, delta, dy (B, D, L) and B, C (B, G, N, L) either contiguous along L (what the kernels are
tuned for) or channel-last: views of (B, L, D) and (B, G, L, N) tensors, as SS3D's projections make
them before the copies it does today (models/ss3d.py, `to_scan`). The kernels take strides, so
the same kernels run both; outputs stay (B, D, L). Session 10 (issue #2).

    python3 benchmarks/scan_layouts.py --out "$OUT"
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "MedSegMamba"))

import torch  # noqa: E402
from scan_gpu import bench, make_inputs  # noqa: E402

SIZES = [("paper", (8192, 8, 64, 1728), 1), ("paper", (8192, 8, 64, 1728), 8), ("default", (1024, 8, 16, 1728), 16)]


def channel_last(ins):
    """The same values, laid out (B, L, D) and (B, G, L, N) in memory, seen as (B, D, L) and (B, G, N, L)."""
    out = dict(ins)
    for k in ("u", "delta"):
        out[k] = ins[k].transpose(1, 2).contiguous().transpose(1, 2)
    for k in ("B", "C"):
        out[k] = ins[k].transpose(2, 3).contiguous().transpose(2, 3)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--bodies", default="scan", help="comma-separated backward tile bodies")
    args = ap.parse_args(argv)
    from medsegmamba.ops.triton.selective_scan import BWD_VARIANT_ENV_VAR, selective_scan_triton

    args.out.mkdir(parents=True, exist_ok=True)
    dev = torch.device("cuda")
    rows = []
    for label, (dim, groups, n, length), batch in SIZES:
        base = make_inputs(batch, dim, groups, n, length, dev, torch.float32)
        dy_l = torch.randn_like(base["u"])
        for layout in ("L-contiguous", "channel-last"):
            ins = base if layout == "L-contiguous" else channel_last(base)
            dy = dy_l if layout == "L-contiguous" else dy_l.transpose(1, 2).contiguous().transpose(1, 2)
            leaves = {k: v.detach().clone().requires_grad_() for k, v in ins.items()}  # clone keeps strides
            with torch.no_grad():
                fwd = bench(lambda: selective_scan_triton(**ins), dev)
            for body in args.bodies.split(","):
                os.environ[BWD_VARIANT_ENV_VAR] = body
                row = {"case": f"{label} b{batch}", "layout": layout, "body": body, "fwd_ms": fwd}
                try:
                    row["fwd_bwd_ms"] = bench(lambda: selective_scan_triton(**leaves).backward(dy), dev)
                except Exception as exc:
                    row["error"] = repr(exc)[:300]
                rows.append(row)
                print(json.dumps(row), flush=True)
        del base, dy_l
        torch.cuda.empty_cache()
    lines = [f"{torch.cuda.get_device_name()}; torch {torch.__version__}; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
             "", "| case | input layout | backward body | forward ms | forward + backward ms |", "|---|---|---|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['case']} | {r['layout']} | {r['body']} | {r['fwd_ms']:.3f} | "
                     f"{r.get('fwd_bwd_ms', float('nan')):.3f} |")
    (args.out / "layouts.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
