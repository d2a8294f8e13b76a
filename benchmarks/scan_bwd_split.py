"""The chunked scan backward with each channel block's states split over 2 or 4 programs
($MEDSEGMAMBA_TRITON_BWD_SPLIT) against the states whole, on the GPU (issue #2).

    python3 benchmarks/scan_bwd_split.py --out "$OUT"            # CUDA, paper size, ~1 min
    python3 benchmarks/scan_bwd_split.py --out /tmp/x --smoke    # CPU through Triton's interpreter

One scan's forward + backward (fp32 inputs, median of triton.testing.do_bench) at the paper's size
(8 x 1024 channels, N 64, L 1728), batch 1 and 2, for each split and backward launch (channels per
program, steps per tile, warps), with the largest difference of every gradient from the unsplit
backward's. Built for sm_90 here (kernel_resources.py, "bwd-split2"), a split does not free the
registers it was meant to: 235 a thread at 32 states (255 whole), and more instructions per
element-step (75.6 against 49.2 at T 2, 4 warps). This says what the GPU makes of it.
Writes results.json and results.md.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "MedSegMamba"))
if "--smoke" in sys.argv:  # before triton is imported
    from medsegmamba.ops.triton.interpreter import enable

    enable()

import torch  # noqa: E402
from scan_gpu import bench, make_inputs  # noqa: E402

from medsegmamba.ops.triton.selective_scan import SPLIT_ENV_VAR, selective_scan_triton  # noqa: E402

# (split, backward launch (block_d, T, warps); None: the launcher's default for that split)
CONFIGS = [(1, None), (2, None), (2, (16, 2, 4)), (2, (16, 2, 2)), (2, (32, 2, 4)), (4, None), (4, (16, 4, 2))]
SMOKE_CONFIGS = [(1, None), (2, None), (4, (4, 2, 1))]


def step(leaves, dy, split, launch):
    """One forward + backward through the chunked backward with `split` (gradients add into leaves)."""
    os.environ[SPLIT_ENV_VAR] = str(split)
    selective_scan_triton(**leaves, bwd_kernel="chunked", bwd_launch=launch).backward(dy)


def grads(ins, dy, split, launch):
    """The gradients of one step from fresh leaves."""
    leaves = {k: v.detach().clone().requires_grad_() for k, v in ins.items()}
    step(leaves, dy, split, launch)
    return {k: v.grad for k, v in leaves.items()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--smoke", action="store_true", help="CPU, tiny sizes, Triton's interpreter")
    args = ap.parse_args(argv)
    device = torch.device("cpu" if args.smoke else "cuda")
    if args.smoke:
        from medsegmamba.ops.triton import selective_scan as tscan

        tscan.CHUNK = 8
    size, batches = ((16, 2, 8, 40), (1,)) if args.smoke else ((8192, 8, 64, 1728), (1, 2))
    configs = SMOKE_CONFIGS if args.smoke else CONFIGS
    rows = []
    for batch in batches:
        ins = make_inputs(batch, *size, device, torch.float32)
        dy = torch.randn_like(ins["u"])
        base = grads(ins, dy, 1, None)
        # timed on leaves made once, as scan_bwd_segments.py times: no copies of the inputs in the loop
        leaves = {k: v.detach().clone().requires_grad_() for k, v in ins.items()}
        for split, launch in configs:
            row = {"batch": batch, "split": split, "launch": launch}
            try:
                mine = grads(ins, dy, split, launch)
                row["max_abs_vs_whole"] = max((mine[k] - base[k]).abs().max().item() for k in base)
                row["ms"] = bench(lambda: step(leaves, dy, split, launch), device) if device.type == "cuda" else None
            except Exception as exc:  # a launch that fails is a result, not a crash
                row["error"] = repr(exc)[:300]
            rows.append(row)
            print(row, flush=True)
    os.environ.pop(SPLIT_ENV_VAR, None)
    meta = {"device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu (interpreter)",
            "torch": torch.__version__,
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "size": dict(zip(("dim", "groups", "n", "length"), size))}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    lines = [f"# Scan backward, states split: {meta['device']}, torch {meta['torch']}, {meta['date']}", "",
             f"size {meta['size']}, fp32; forward + backward of one scan, chunked backward", "",
             "| batch | split | launch (block_d, T, warps) | ms | max abs vs states whole | error |",
             "|---:|---:|---|---:|---:|---|"]
    for r in rows:
        ms = "-" if r.get("ms") is None else f"{r['ms']:.3f}"
        diff = f"{r['max_abs_vs_whole']:.1e}" if "max_abs_vs_whole" in r else "-"
        lines.append(f"| {r['batch']} | {r['split']} | {r['launch'] or 'default'} | {ms} | {diff} | "
                     f"{r.get('error', '')} |")
    (args.out / "results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
