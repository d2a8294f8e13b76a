"""SS3D's path scan on the GPU: the kernel that walks the paths (`selective_scan_paths`, inference)
against the gathered route it replaced (copies into (Bt, 8*Ci, L), the chunked kernel, a scatter).

    python3 benchmarks/scan_paths_gpu.py --out "$OUT"              # CUDA, paper size, < 1 min
    python3 benchmarks/scan_paths_gpu.py --out /tmp/x --smoke      # CPU through Triton's interpreter

Inputs are laid out as SS3D makes them under bf16 autocast: u (Bt, L, Ci) and delta
(Bt, 8, L, Ci) bf16, B and C bf16 views into one (Bt, L, 8, R+2N) projection; A, D, delta_bias
float32; the 8 paths of orientation 0. For batch 1 and 8: the largest difference of the two
routes' outputs (and, at batch 1, of each against the plain-PyTorch reference), and their median
times (CUDA events). With --sweep, the walked kernel's launch configurations (channels per
program, steps per tile, warps) at the largest batch, each checked against the default's output.
Writes results.json and results.md.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "MedSegMamba"))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # model_gpu.timed, imported after the interpreter is set


def make_inputs(batch, ci, n, size, device, seed=0):
    import torch

    from medsegmamba.models import scan_paths as sp

    g = torch.Generator(device="cpu").manual_seed(seed)
    r = lambda *s: torch.randn(*s, generator=g)  # noqa: E731
    length, k, rank = size ** 3, sp.NUM_DIRECTIONS, -(-ci // 16)
    bf = lambda t: t.to(device, torch.bfloat16)  # noqa: E731
    proj = bf(r(batch, length, k, rank + 2 * n)).transpose(1, 2)  # (Bt, 8, L, R+2N), a view
    return dict(u=bf(r(batch, length, ci)), delta=bf(r(batch, k, length, ci) * 0.5 - 2.0),
                A=(-torch.exp(torch.log(torch.arange(1.0, n + 1)).expand(k * ci, n) + 0.1 * r(k * ci, n))).to(device),
                B=proj[..., rank:rank + n], C=proj[..., rank + n:],
                paths=sp.scan_paths(size)[0].to(device, torch.int32),
                D=r(k * ci).to(device), delta_bias=(r(k * ci) * 0.5 - 4.0).to(device))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--smoke", action="store_true", help="CPU, Triton's interpreter, tiny sizes")
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--sweep", action="store_true",
                    help="also time the walked kernel's launch configurations at the largest batch")
    args = ap.parse_args(argv)
    if args.smoke:
        from medsegmamba.ops.triton.interpreter import enable

        enable()
    import torch

    from medsegmamba.ops.selective_scan import _paths_by_gather, selective_scan_paths
    from medsegmamba.ops.triton.selective_scan import selective_scan_paths_triton
    from model_gpu import timed

    # median ms of CUDA events; none under the interpreter, where a timing would mean nothing
    timed_ms = lambda fn, device, iters: timed(fn, device, 3, iters) if device.type == "cuda" else None  # noqa: E731

    device = torch.device("cpu" if args.smoke else "cuda")
    ci, n, size, batches = (8, 4, 3, (1, 2)) if args.smoke else (1024, 64, 12, (1, 8))
    rows = []
    for batch in batches:
        x = make_inputs(batch, ci, n, size, device)
        ins = (x["u"], x["delta"], x["A"], x["B"], x["C"], x["paths"])
        kw = dict(D=x["D"], delta_bias=x["delta_bias"])
        with torch.inference_mode():
            walked = lambda: selective_scan_paths(*ins, **kw, impl="triton")  # noqa: E731
            gathered = lambda: _paths_by_gather(*ins, kw["D"], kw["delta_bias"], True, "triton")  # noqa: E731
            y_w, y_g = walked(), gathered()
            row = {"batch": batch, "max_abs_walked_vs_gathered": (y_w - y_g).abs().max().item(),
                   "max_abs_out": y_g.abs().max().item()}
            if batch == 1:
                y_r = selective_scan_paths(*ins, **kw, impl="ref")
                row["max_abs_walked_vs_ref"] = (y_w - y_r).abs().max().item()
                row["max_abs_gathered_vs_ref"] = (y_g - y_r).abs().max().item()
            row["walked_ms"] = timed_ms(walked, device, args.iters)
            row["gathered_ms"] = timed_ms(gathered, device, args.iters)
        rows.append(row)
        print(row, flush=True)
    sweep = []
    if args.sweep:
        # (channels per program, steps per tile, warps); the default (16, 8, 2) first: the
        # paths change what each load touches (a row of 16 bf16 channels: 32 bytes), so the
        # forward's sweep of session 6, made on the (Bt, D, L) layout, may no longer hold
        configs = ((2, 2, 1), (4, 2, 1)) if args.smoke else (
            (16, 8, 2), (16, 4, 2), (16, 16, 4), (32, 4, 2), (32, 8, 4), (8, 8, 1), (8, 16, 2), (64, 2, 2), (64, 4, 4))
        with torch.inference_mode():
            base = None
            for block_d, chunk_t, warps in configs:
                run = lambda: selective_scan_paths_triton(*ins, **kw, block_d=block_d, chunk_t=chunk_t,  # noqa: E731
                                                          num_warps=warps)
                y = run()
                base = y if base is None else base
                sweep.append({"batch": batch, "block_d": block_d, "chunk_t": chunk_t, "num_warps": warps,
                              "ms": timed_ms(run, device, args.iters),
                              "max_abs_vs_first": (y - base).abs().max().item()})
                print(sweep[-1], flush=True)
    meta = {"device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu (interpreter)",
            "torch": torch.__version__,
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "size": {"channels": ci, "d_state": n, "grid": size, "directions": 8}, "iters": args.iters,
            "fwd_kernel": os.environ.get("MEDSEGMAMBA_TRITON_FWD", "chunked")}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps({"meta": meta, "rows": rows, "sweep": sweep}, indent=2))
    lines = [f"# SS3D path scan: {meta['device']}, torch {meta['torch']}, {meta['date']}", "",
             f"size: {meta['size']}; bf16 inputs as SS3D makes them, float32 state and output", "",
             "| batch | walked, ms | gathered, ms | max abs difference (walked - gathered) | max abs output |",
             "|---:|---:|---:|---:|---:|"]
    fmt = lambda v: "-" if v is None else f"{v:.3f}"  # noqa: E731
    for r in rows:
        lines.append(f"| {r['batch']} | {fmt(r['walked_ms'])} | {fmt(r['gathered_ms'])} | "
                     f"{r['max_abs_walked_vs_gathered']:.2e} | {r['max_abs_out']:.3g} |")
    ref = [r for r in rows if "max_abs_walked_vs_ref" in r]
    if ref:
        lines += ["", f"batch 1 against the plain-PyTorch reference: walked {ref[0]['max_abs_walked_vs_ref']:.2e}, "
                      f"gathered {ref[0]['max_abs_gathered_vs_ref']:.2e}"]
    if sweep:
        lines += ["", f"walked kernel's launch configurations, batch {sweep[0]['batch']}:", "",
                  "| channels per program | steps per tile | warps | ms | max abs vs the first |", "|---:|---:|---:|---:|---:|"]
        lines += [f"| {r['block_d']} | {r['chunk_t']} | {r['num_warps']} | {fmt(r['ms'])} | {r['max_abs_vs_first']:.1e} |"
                  for r in sweep]
    (args.out / "results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
