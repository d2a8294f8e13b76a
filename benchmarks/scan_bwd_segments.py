"""The segment-parallel scan backward against the chunked one, on the GPU (issue #2), in one short call.

    python3 benchmarks/scan_bwd_segments.py --out "$OUT"            # CUDA, about 2 minutes
    python3 benchmarks/scan_bwd_segments.py --out /tmp/x --smoke    # CPU through Triton's interpreter
    python3 benchmarks/scan_bwd_segments.py --out "$OUT" --bodies steps,scan   # session 9: the tile bodies

--bodies runs every part once per tile body of the chunked and parallel backward
($MEDSEGMAMBA_TRITON_BWD_VARIANT: "steps", the steps unrolled, or "scan", scans over (T, N, D)
tiles) with each one's default launch, at the paper's size at batch 1 and 8 and the default
model's at 16 and 4, instead of session 8's segment counts and register caps.

Parts, most wanted first; each appends its rows to results.jsonl as it ends, so a call cut short
still brings back what it measured:
(a) timings: median forward + backward of one scan (fp32, triton.testing.do_bench) with the
    chunked backward and the parallel one (VARIANTS: segment counts, and register caps through
    $MEDSEGMAMBA_TRITON_BWD_MAXNREG), at the paper's size (8 x 1024 channels, N 64, L 1728) at
    batch 1 and the default model's (8 x 128, N 16) at batch 16 and 4;
(b) accuracy: relative error ||out - ref|| / ||ref|| of y and every gradient against the float64
    reference, paper size, batch 1, fp32 inputs (bf16 at the very end), both backwards;
(c) the paper network's training step (bf16 autocast, batch 1) and the default model's (batch 16),
    ms per 96^3 patch, with each backward ($MEDSEGMAMBA_TRITON_BWD) and the chunked one capped at
    128 registers.
Writes results.jsonl and results.md; prints the table last.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "MedSegMamba"))
if "--smoke" in sys.argv:  # before triton is imported
    from medsegmamba.ops.triton.interpreter import enable

    enable()

import torch  # noqa: E402
from model_gpu import DEFAULT, PAPER, run_case  # noqa: E402
from scan_gpu import accuracy, bench, make_inputs  # noqa: E402

# (label, (dim, groups, N, L), batch); the default model's SS3D scan: 8 sequences x 128 channels
SIZES = [("paper", (8192, 8, 64, 1728), 1), ("default", (1024, 8, 16, 1728), 16), ("default", (1024, 8, 16, 1728), 4)]
# (name, backward, segments (None: the launcher's rule), register cap ($MEDSEGMAMBA_TRITON_BWD_MAXNREG))
VARIANTS = [("chunked", "chunked", None, None), ("chunked r168", "chunked", None, 168),
            ("chunked r128", "chunked", None, 128), ("parallel/auto", "parallel", None, None),
            ("parallel/9", "parallel", 9, None), ("parallel/auto r128", "parallel", None, 128)]
SMOKE_VARIANTS = [("chunked", "chunked", None, None), ("parallel/auto", "parallel", None, None),
                  ("parallel/2 r128", "parallel", 2, 128)]
SMOKE_SIZES = [("smoke", (16, 2, 4, 40), 2)]
# --bodies: (name, backward, segments, register cap), each run with every body
BODY_VARIANTS = [("chunked", "chunked", None, None), ("parallel/auto", "parallel", None, None)]
BODY_SIZES = [("paper", (8192, 8, 64, 1728), 1), ("paper", (8192, 8, 64, 1728), 8),
              ("default", (1024, 8, 16, 1728), 16), ("default", (1024, 8, 16, 1728), 4)]


def with_bodies(variants, bodies):
    """(name, backward, segments, register cap, body) for each variant and body; None: the package's."""
    return [(f"{name} {body}" if body else name, bwd, seg, regs, body) for body in bodies
            for name, bwd, seg, regs in variants]


def set_body(body):
    from medsegmamba.ops.triton.selective_scan import BWD_VARIANT_ENV_VAR

    if body is None:
        os.environ.pop(BWD_VARIANT_ENV_VAR, None)
    else:
        os.environ[BWD_VARIANT_ENV_VAR] = body


def scan_fn(bwd_kernel, segments):
    from medsegmamba.ops.triton.selective_scan import selective_scan_triton

    return partial(selective_scan_triton, bwd_kernel=bwd_kernel, bwd_segments=segments)


def set_maxnreg(regs):
    from medsegmamba.ops.triton.selective_scan import MAXNREG_ENV_VAR

    if regs is None:
        os.environ.pop(MAXNREG_ENV_VAR, None)
    else:
        os.environ[MAXNREG_ENV_VAR] = str(regs)


def timings(sizes, variants, device, emit):
    for label, (dim, groups, n, length), batch in sizes:
        ins = make_inputs(batch, dim, groups, n, length, device, torch.float32)
        leaves = {k: v.detach().clone().requires_grad_() for k, v in ins.items()}
        dy = torch.randn_like(ins["u"])
        for name, bwd, segments, regs, body in variants:
            fn = scan_fn(bwd, segments)
            set_maxnreg(regs)
            set_body(body)
            row = {"part": "timings", "case": f"{label} b{batch}", "bwd": name}
            try:
                row["fwd_bwd_ms"] = bench(lambda: fn(**leaves).backward(dy), device)
            except Exception as exc:  # a variant that fails is a result, not a crash
                row["error"] = repr(exc)[:300]
            emit(row)
        set_maxnreg(None)
        set_body(None)
        del ins, leaves, dy
        torch.cuda.empty_cache() if device.type == "cuda" else None


def accuracies(size, device, emit, dtypes, bodies):
    dim, groups, n, length = size

    def in_body(fn, body):  # the body is read at the backward, which accuracy() runs right after the call
        return lambda **kw: (set_body(body), fn(**kw))[1]

    for dtype in dtypes:
        ins = make_inputs(1, dim, groups, n, length, device, dtype)
        fast = {name: in_body(scan_fn(bwd, seg), body)
                for name, bwd, seg, _, body in with_bodies(BODY_VARIANTS, bodies)}
        for row in accuracy(fast, ins, f"b1 {str(dtype).split('.')[-1]}"):
            emit({"part": "accuracy"} | row)
        set_body(None)


def networks(device, emit, smoke, bodies):
    cases = [("paper", PAPER, 1), ("default", DEFAULT, 16)] if not smoke else [
        ("tiny", dict(channels=(1, 8, 16, 32, 64, 16), num_blocks=1, d_state=4, num_classes=4, patch_size=32), 1)]
    patch = 32 if smoke else 96
    from medsegmamba.models import MedSegMamba

    for label, cfg, batch in cases:
        torch.manual_seed(0)
        model = MedSegMamba(**cfg, scan_impl="triton").to(device)
        if device.type == "cuda":
            model.set_fused_groupnorm(True)
        runs = [(bwd, regs, None) for bwd, regs in (("chunked", None), ("parallel", None), ("chunked", 128))]
        if bodies != [None]:
            runs = [("auto", None, body) for body in bodies]
        for bwd, regs, body in runs:
            os.environ["MEDSEGMAMBA_TRITON_BWD"] = bwd
            set_maxnreg(regs)
            set_body(body)
            precision = "bf16" if device.type == "cuda" else "fp32"
            row = {"part": "train step", "case": f"{label} b{batch} {precision}",
                   "bwd": bwd + (f" r{regs}" if regs else "") + (f" {body}" if body else "")}
            try:
                row |= run_case(model, device, "train", precision, batch, patch,
                                False, warmup=0 if smoke else 2, iters=1 if smoke else 8)
            except Exception as exc:
                row["error"] = repr(exc)[:300]
            emit(row)
        os.environ.pop("MEDSEGMAMBA_TRITON_BWD", None)
        set_maxnreg(None)
        set_body(None)
        del model
        torch.cuda.empty_cache() if device.type == "cuda" else None


def markdown(rows, meta):
    out = [f"device: {meta['device']}; torch {meta['torch']}; {meta['date']}", "",
           "| part | case | backward | ms | peak GiB / errors |", "|---|---|---|---:|---|"]
    for r in rows:
        if r["part"] == "accuracy":
            errs = ", ".join(f"{k} {v:.1e}" for k, v in r.items() if k not in ("part", "case", "impl"))
            out.append(f"| accuracy | {r['case']} | {r['impl']} | | {errs} |")
        else:
            ms = r.get("fwd_bwd_ms", r.get("ms_per_patch"))
            note = r.get("error") or (f"{r['peak_gib']:.2f}" if r.get("peak_gib") else "")
            out.append(f"| {r['part']} | {r['case']} | {r['bwd']} | {'' if ms is None else f'{ms:.3f}'} | {note} |")
    return "\n".join(out) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--smoke", action="store_true", help="CPU, tiny sizes, Triton's interpreter")
    ap.add_argument("--parts", default="timings,accuracy,networks")
    ap.add_argument("--bodies", default=None, help="comma-separated tile bodies to compare, of steps, scan")
    args = ap.parse_args(argv)
    bodies = args.bodies.split(",") if args.bodies else [None]
    if not set(bodies) <= {None, "steps", "scan"}:
        ap.error(f"--bodies: expected some of steps, scan, got {args.bodies!r}")
    if args.smoke:
        from medsegmamba.ops.triton import selective_scan as tscan

        tscan.CHUNK = 8  # several checkpoint chunks at the smoke size's 40 steps
    device = torch.device("cuda" if torch.cuda.is_available() and not args.smoke else "cpu")
    args.out.mkdir(parents=True, exist_ok=True)
    meta = {"device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu (interpreter)",
            "torch": torch.__version__, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    rows = []
    log = open(args.out / "results.jsonl", "a", encoding="utf-8")

    def emit(row):
        rows.append(row)
        log.write(json.dumps(row) + "\n")
        log.flush()
        print(json.dumps(row), flush=True)

    log.write(json.dumps({"part": "meta"} | meta) + "\n")
    parts = args.parts.split(",")
    t0 = time.time()
    acc_size = SMOKE_SIZES[0][1] if args.smoke else SIZES[0][1]
    if args.bodies:
        variants, sizes = with_bodies(SMOKE_VARIANTS[:2] if args.smoke else BODY_VARIANTS, bodies), BODY_SIZES
    else:
        variants, sizes = with_bodies(SMOKE_VARIANTS if args.smoke else VARIANTS, bodies), SIZES
    if "timings" in parts:
        timings(SMOKE_SIZES if args.smoke else sizes, variants, device, emit)
    if "accuracy" in parts:
        accuracies(acc_size, device, emit, (torch.float32,), bodies)
    if "networks" in parts:
        networks(device, emit, args.smoke, bodies)
    if "accuracy" in parts:
        accuracies(acc_size, device, emit, (torch.bfloat16,), bodies)
    (args.out / "results.md").write_text(markdown(rows, meta), encoding="utf-8")
    print(markdown(rows, meta))
    print(f"total {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
