"""The Gluon backward ($MEDSEGMAMBA_TRITON_BWD=gluon) against the chunked one, on the GPU (issue #2).

    python3 benchmarks/scan_bwd_gluon.py --out "$OUT"     # CUDA, < 1 min
    python3 benchmarks/scan_bwd_gluon.py --out "$OUT" --launches 4,4,2,4 4,4,1,4
    ncu ... python3 benchmarks/scan_bwd_gluon.py --out "$OUT" --once --batches 1   # each backward once

One scan's forward + backward at the paper's size (8 x 1024 channels, N 64, L 1728), fp32, batch
1 and 2: each backward's median time (triton.testing.do_bench, through scan_gpu.bench) and the
largest relative difference of the Gluon backward's gradients from the chunked one's. --launches
times the Gluon kernel at each "SPT_N,TPW_N,SPT_D,warps" ($MEDSEGMAMBA_TRITON_BWD_GLUON; "default"
is the package's), and --bc with each way of summing dB and dC over channel blocks
($MEDSEGMAMBA_TRITON_BC: partial, atomic; the chunked backward keeps its default). --once runs
each backward once, untimed (for a profiler). Writes results.json and results.md.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "MedSegMamba"))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--batches", default="1,2")
    ap.add_argument("--launches", nargs="+", default=["default"])
    ap.add_argument("--bc", nargs="+", default=["partial"], choices=("partial", "atomic"),
                    help="$MEDSEGMAMBA_TRITON_BC values for the Gluon backward")
    ap.add_argument("--once", action="store_true", help="each backward once, untimed (for ncu)")
    ap.add_argument("--default-model", action="store_true",
                    help="the shipped default model's size (8 x 128 channels, N 16), against the package's auto choice")
    args = ap.parse_args(argv)
    import os

    import torch

    from medsegmamba.ops.triton.selective_scan import selective_scan_triton
    from scan_gpu import bench, make_inputs

    if not torch.cuda.is_available():
        ap.error("needs CUDA (Gluon kernels have no interpreter)")
    device = torch.device("cuda")
    rows = []
    for batch in (int(b) for b in args.batches.split(",")):
        dim, n_state = (1024, 16) if args.default_model else (8192, 64)
        ins = make_inputs(batch, dim, 8, n_state, 1728, device, torch.float32)
        leaves = {k: v.detach().clone().requires_grad_() for k, v in ins.items()}
        dy = torch.randn_like(ins["u"])
        grads, row = {}, {"batch": batch}
        runs = [("chunked", None)] + [("auto", None)] * args.default_model
        runs += [("gluon", launch, bc) for bc in args.bc for launch in args.launches]
        for bwd, launch, *bc in runs:
            name = bwd if launch in (None, "default") else f"gluon[{launch}]"
            name = f"{name}:{bc[0]}" if bc else name
            os.environ.pop("MEDSEGMAMBA_TRITON_BWD_GLUON", None)
            os.environ.pop("MEDSEGMAMBA_TRITON_BC", None)
            if bc:
                os.environ["MEDSEGMAMBA_TRITON_BC"] = bc[0]
            if launch not in (None, "default"):
                os.environ["MEDSEGMAMBA_TRITON_BWD_GLUON"] = launch
            run = lambda: selective_scan_triton(**leaves, bwd_kernel=bwd)  # noqa: E731
            try:
                grads[name] = torch.autograd.grad((run() * dy).sum(), list(leaves.values()))
                if not args.once:
                    row[f"{name}_ms"] = bench(lambda: torch.autograd.grad((run() * dy).sum(), list(leaves.values())),
                                              device)
            except Exception as exc:  # a failing backward is a result, not a crash
                row[f"{name}_error"] = repr(exc)[:300]
        os.environ.pop("MEDSEGMAMBA_TRITON_BWD_GLUON", None)
        os.environ.pop("MEDSEGMAMBA_TRITON_BC", None)
        for name in grads:
            if name != "chunked" and "chunked" in grads:
                row[f"{name}_max_rel_diff"] = max(
                    ((a - b).norm() / b.norm().clamp_min(1e-12)).item()
                    for a, b in zip(grads[name], grads["chunked"]))
        rows.append(row)
        print(row, flush=True)
    meta = {"device": torch.cuda.get_device_name(), "torch": torch.__version__,
            "triton": __import__("triton").__version__,
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    lines = [f"# Gluon backward vs chunked: {meta['device']}, torch {meta['torch']}, "
             f"triton {meta['triton']}, {meta['date']}", "",
             ("default model's size (8 x 128 channels, N 16" if args.default_model else
              "paper size (8 x 1024 channels, N 64") + ", L 1728), fp32, one scan's forward + backward", ""]
    lines += [f"- {json.dumps(r)}" for r in rows]
    (args.out / "results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
