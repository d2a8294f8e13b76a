"""The Gluon backward prototype ($MEDSEGMAMBA_TRITON_BWD=gluon) against the chunked one, on the GPU (issue #2).

    python3 benchmarks/scan_bwd_gluon.py --out "$OUT"     # CUDA, < 1 min

One scan's forward + backward at the paper's size (8 x 1024 channels, N 64, L 1728), fp32, batch
1 and 2: each backward's median time (triton.testing.do_bench, through scan_gpu.bench) and the
largest relative difference of the Gluon backward's gradients from the chunked one's. Writes
results.json and results.md.
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
    args = ap.parse_args(argv)
    import torch

    from medsegmamba.ops.triton.selective_scan import selective_scan_triton
    from scan_gpu import bench, make_inputs

    if not torch.cuda.is_available():
        ap.error("needs CUDA (Gluon kernels have no interpreter)")
    device = torch.device("cuda")
    rows = []
    for batch in (int(b) for b in args.batches.split(",")):
        ins = make_inputs(batch, 8192, 8, 64, 1728, device, torch.float32)
        leaves = {k: v.detach().clone().requires_grad_() for k, v in ins.items()}
        dy = torch.randn_like(ins["u"])
        grads, row = {}, {"batch": batch}
        for bwd in ("chunked", "gluon"):
            run = lambda: selective_scan_triton(**leaves, bwd_kernel=bwd)  # noqa: E731
            try:
                grads[bwd] = torch.autograd.grad((run() * dy).sum(), list(leaves.values()))
                row[f"{bwd}_ms"] = bench(lambda: torch.autograd.grad((run() * dy).sum(), list(leaves.values())),
                                         device)
            except Exception as exc:  # a failing backward is a result, not a crash
                row[f"{bwd}_error"] = repr(exc)[:300]
        if len(grads) == 2:
            row["max_rel_diff"] = {name: ((a - b).norm() / b.norm().clamp_min(1e-12)).item()
                                   for name, a, b in zip(leaves, grads["gluon"], grads["chunked"])}
        rows.append(row)
        print(row, flush=True)
    meta = {"device": torch.cuda.get_device_name(), "torch": torch.__version__,
            "triton": __import__("triton").__version__,
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    lines = [f"# Gluon backward prototype vs chunked: {meta['device']}, torch {meta['torch']}, "
             f"triton {meta['triton']}, {meta['date']}", "",
             "paper size (8 x 1024 channels, N 64, L 1728), fp32, one scan's forward + backward", ""]
    lines += [f"- {json.dumps(r)}" for r in rows]
    (args.out / "results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
