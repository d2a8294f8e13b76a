"""SS3D's inference scan walking its paths: the Gluon kernel against the chunked Triton kernel.

    python3 benchmarks/scan_walk_gpu.py --out "$OUT"            # CUDA, paper size, < 1 min
    python3 benchmarks/scan_walk_gpu.py --out "$OUT" --sweep 1,8   # and the Gluon kernel's launches at batch 1 and 8

Inputs as scan_paths_gpu.py makes them (SS3D's bf16 layouts at the paper's size: 8 directions x
1024 channels, N 64, 12^3 voxels). For each batch (--batches): the largest difference between the two
kernels' outputs (and at batch 1, of each against the plain-PyTorch reference), their median
times (CUDA events), and the exponentials' floor: one MUFU.EX2 per element-step, 16 a clock per
multiprocessor, at the clock given by --clock-ghz. With --sweep, the Gluon kernel's launch
configurations (SPT_N, TPW_N, SPT_D, T, warps) at those batches, each checked against the chunked
kernel. Writes results.json and results.md. Gluon has no interpreter: CUDA only.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "MedSegMamba"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

# session 18's first sweep (batch 8, H100): (16, 4, 2, 4 or 8, 4) and (32, 2, 1, 8, 4) best, 2.82-2.86 ms;
# the smaller programs at the end give batch 1 more of them (128 programs at the default)
SWEEP = ((16, 4, 2, 8, 4), (16, 4, 2, 4, 4), (32, 2, 1, 8, 4), (16, 4, 2, 8, 2), (16, 4, 1, 8, 4),
         (16, 4, 2, 8, 1), (16, 4, 1, 8, 2), (32, 2, 1, 8, 2), (16, 4, 1, 8, 1), (64, 1, 1, 8, 2))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--batches", default="1,8", help="comma-separated batch sizes (default 1,8)")
    ap.add_argument("--sweep", default="", help="comma-separated batches at which to time the Gluon kernel's launches")
    ap.add_argument("--clock-ghz", type=float, default=1.98, help="SM clock for the floor (H100/H200 SXM boost)")
    args = ap.parse_args(argv)
    import torch

    from medsegmamba.ops.selective_scan import selective_scan_paths
    from medsegmamba.ops.triton.selective_scan import _gluon_walk_config, selective_scan_paths_triton
    from model_gpu import timed
    from scan_paths_gpu import make_inputs

    if not torch.cuda.is_available():
        ap.error("needs CUDA (Gluon kernels have no interpreter)")
    device = torch.device("cuda")
    ci, n, size = 1024, 64, 12
    sms = torch.cuda.get_device_properties(device).multi_processor_count
    rows, sweep = [], []
    batches = [int(b) for b in args.batches.split(",")]
    sweep_at = {int(b) for b in args.sweep.split(",") if b}
    for batch in sorted(set(batches) | sweep_at):
        x = make_inputs(batch, ci, n, size, device)
        ins = (x["u"], x["delta"], x["A"], x["B"], x["C"], x["paths"])
        kw = dict(D=x["D"], delta_bias=x["delta_bias"])
        element_steps = batch * 8 * ci * n * size ** 3
        with torch.inference_mode():
            chunked = lambda: selective_scan_paths_triton(*ins, **kw, kernel="chunked")  # noqa: E731
            gluon = lambda: selective_scan_paths_triton(*ins, **kw, kernel="gluon")  # noqa: E731
            y_c, y_g = chunked(), gluon()
            row = {"batch": batch, "max_abs_gluon_vs_chunked": (y_g - y_c).abs().max().item(),
                   "max_abs_out": y_c.abs().max().item(), "gluon_launch": list(_gluon_walk_config(ci, n)),
                   "exp_floor_ms": element_steps / (sms * 16 * args.clock_ghz * 1e6)}
            if batch == 1:
                y_r = selective_scan_paths(*ins, **kw, impl="ref")
                row["max_abs_chunked_vs_ref"] = (y_c - y_r).abs().max().item()
                row["max_abs_gluon_vs_ref"] = (y_g - y_r).abs().max().item()
            row["chunked_ms"] = timed(chunked, device, 3, args.iters)
            row["gluon_ms"] = timed(gluon, device, 3, args.iters)
        rows.append(row)
        print(row, flush=True)
        if batch in sweep_at:
            with torch.inference_mode():
                for launch in SWEEP:
                    run = lambda: selective_scan_paths_triton(  # noqa: E731
                        *ins, **kw, kernel="gluon", gluon_launch=launch)
                    try:
                        y = run()
                        sweep.append({"batch": batch, "launch": list(launch), "ms": timed(run, device, 3, args.iters),
                                      "max_abs_vs_chunked": (y - y_c).abs().max().item()})
                    except Exception as exc:  # a launch that does not build (registers, shared memory) is a row too
                        sweep.append({"batch": batch, "launch": list(launch), "ms": None,
                                      "error": f"{type(exc).__name__}: {exc}"[:300]})
                    print(sweep[-1], flush=True)
    meta = {"device": torch.cuda.get_device_name(), "multiprocessors": sms, "torch": torch.__version__,
            "triton": __import__("triton").__version__,
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "size": {"channels": ci, "d_state": n, "grid": size, "directions": 8}, "iters": args.iters,
            "clock_ghz_for_floor": args.clock_ghz}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps({"meta": meta, "rows": rows, "sweep": sweep}, indent=2))
    lines = [f"# SS3D's walk, Gluon against chunked Triton: {meta['device']}, torch {meta['torch']}, "
             f"triton {meta['triton']}, {meta['date']}", "",
             f"size: {meta['size']}; bf16 inputs as SS3D makes them, float32 state and output", "",
             "| batch | chunked, ms | Gluon, ms | exponentials' floor, ms | max abs (Gluon - chunked) "
             "| max abs output |",
             "|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['batch']} | {r['chunked_ms']:.3f} | {r['gluon_ms']:.3f} | {r['exp_floor_ms']:.3f} | "
              f"{r['max_abs_gluon_vs_chunked']:.2e} | {r['max_abs_out']:.3g} |" for r in rows]
    lines += ["", f"Gluon's launch {rows[0]['gluon_launch']}"]
    lines += [f"batch 1 against the plain-PyTorch reference: chunked {r['max_abs_chunked_vs_ref']:.2e}, "
              f"Gluon {r['max_abs_gluon_vs_ref']:.2e}" for r in rows if "max_abs_gluon_vs_ref" in r]
    if sweep:
        lines += ["", "Gluon launches (SPT_N, TPW_N, SPT_D, T, warps):", "",
                  "| batch | launch | ms | max abs vs chunked |", "|---:|---|---:|---:|"]
        cell = lambda s: (f"{s['ms']:.3f} | {s['max_abs_vs_chunked']:.1e} |" if s["ms"] is not None  # noqa: E731
                          else f"- | {s['error']} |")
        lines += [f"| {s['batch']} | {tuple(s['launch'])} | " + cell(s) for s in sweep]
    (args.out / "results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
