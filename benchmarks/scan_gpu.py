"""Selective scan on the GPU: Triton vs reference accuracy at the paper's sizes, and timings.

    python3 benchmarks/scan_gpu.py --out "$OUT"                  # CUDA, about 3 minutes
    python3 benchmarks/scan_gpu.py --out "$OUT" --parts sweep    # CUDA, launch settings only
    python3 benchmarks/scan_gpu.py --out /tmp/x --smoke          # CPU, tiny sizes, reference only
    python3 benchmarks/scan_gpu.py --out "$OUT" --size 1024,8,16,1728 --parts accuracy,timings
                                                       # another model's scan (the default's here)

Both Triton forward kernels are measured side by side: "seq" (one step at a time) and "chunked"
(T steps at once through an associative scan), each with the sequential backward; and both
backward kernels: "seq" and "chunked" (T steps at once, the default since session 3; picked by
bwd_kernel= or $MEDSEGMAMBA_TRITON_BWD), the impls named ".../bwd-chunked".
(a) accuracy: relative error ||out - ref|| / ||ref|| of y and every gradient, each Triton forward
    and backward vs selective_scan_ref in float64 on the same GPU; fp32 and bf16 inputs, batch 1
    and 8 (batch 8 on a group-aligned subset of channels, the same for all). (b) timings: median
    times (triton.testing.do_bench) of forward and forward+backward, bytes moved / time against a
    measured copy bandwidth, and the reference for comparison. (c) sweep: forward times over launch
    settings at batch 1 (seq: fp32; chunked: fp32 and bf16), and forward+backward times of the
    chunked backward over its (block_d, T, num_warps) at batch 1, fp32. Writes results.json and
    results.md; prints the tables and a summary.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from functools import partial
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "MedSegMamba"))
from medsegmamba.ops import selective_scan_ref  # noqa: E402

NAMES = ("u", "delta", "A", "B", "C", "D", "delta_bias")
PARTS = ("accuracy", "timings", "sweep")
SEQ_SWEEP = ((4, 1), (8, 1), (8, 2), (16, 2), (16, 4), (32, 4), (32, 8), (64, 8))  # (block_d, num_warps)
# (block_d, T, num_warps): 64 elements of the (T, N, block_d) tensors per thread at N=64, except
# the last two (128), which trade registers for fewer, longer chunks
CHUNKED_SWEEP = [(32, 4, 4), (32, 2, 2), (64, 4, 8), (64, 2, 4), (16, 4, 2), (32, 8, 8), (16, 8, 4), (32, 16, 8),
                 (32, 8, 4), (32, 4, 2)]
# chunked backward, (block_d, T, num_warps) after the chunked forward: elements of a (T, N, block_d)
# tensor per thread at N=64 are 8 (no spills offline for sm_90), 16 (64-144 bytes spilled) or 32
BWD_SWEEP = ((16, 2, 4), (16, 4, 4), (16, 1, 4), (16, 2, 8), (8, 4, 4), (8, 8, 4), (32, 2, 4), (16, 2, 2))


def make_inputs(batch, dim, groups, n, length, device, dtype, seed=0):
    """SS3D-like inputs: A = -(1..N), dt bias so that softplus(delta + bias) is in about [1e-3, 0.1]."""
    g = torch.Generator(device="cpu").manual_seed(seed)
    r = lambda *s: torch.randn(*s, generator=g)
    u = r(batch, dim, length)
    delta = r(batch, dim, length) * 0.5
    A = -torch.arange(1, n + 1, dtype=torch.float32).repeat(dim, 1) * (1 + 0.1 * torch.rand(dim, n, generator=g))
    B, C = r(batch, groups, n, length), r(batch, groups, n, length)
    D = torch.ones(dim) + 0.1 * r(dim)
    bias = torch.log(torch.expm1(torch.exp(torch.empty(dim).uniform_(-6.9, -2.3, generator=g))))
    lowp = {"u": dtype, "delta": dtype, "B": dtype, "C": dtype}
    tensors = dict(zip(NAMES, (u, delta, A, B, C, D, bias)))
    return {k: v.to(device=device, dtype=lowp.get(k, torch.float32)) for k, v in tensors.items()}


def channel_subset(ins, groups, per_group):
    """Keep the first `per_group` channels of every group (B and C unchanged)."""
    dim = ins["u"].shape[1]
    idx = torch.cat([torch.arange(per_group) + k * (dim // groups) for k in range(groups)]).to(ins["u"].device)
    out = dict(ins)
    for k in ("u", "delta"):
        out[k] = ins[k][:, idx].contiguous()
    for k in ("A", "D", "delta_bias"):
        out[k] = ins[k][idx].contiguous()
    return out


def run_with_grads(fn, ins, dy):
    leaves = {k: v.detach().clone().requires_grad_() for k, v in ins.items()}
    y = fn(**leaves)
    grads = torch.autograd.grad(y, list(leaves.values()), dy)
    return {"y": y.detach()} | {f"d{k}": gr for k, gr in zip(leaves, grads)}


def rel_err(a, b):
    a, b = a.double(), b.double()
    return ((a - b).norm() / b.norm().clamp_min(1e-300)).item()


def accuracy(fast_impls, ins, label):
    """One row per implementation: relative errors against the float64 reference."""
    dy = torch.randn_like(ins["u"], dtype=torch.float32).to(ins["u"].dtype)
    want = run_with_grads(selective_scan_ref, {k: v.double() for k, v in ins.items()}, dy.double())
    rows = []
    for name, fn in fast_impls.items():
        got = run_with_grads(fn, ins, dy)
        rows.append({"case": label, "impl": name} | {k: rel_err(got[k], want[k]) for k in want})
    return rows


def bench(fn, device, reps=20):
    if device.type == "cuda":
        import triton.testing

        return triton.testing.do_bench(fn, warmup=5, rep=reps * 5, return_mode="median")
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def copy_bandwidth(device):
    src = torch.empty(2**27, device=device)  # 512 MB
    dst = torch.empty_like(src)
    ms = bench(lambda: dst.copy_(src), device)
    return 2 * src.numel() * 4 / ms / 1e6  # GB/s


def scan_bytes(ins, backward):
    """Least bytes a pass must move: inputs and outputs once (backward: dy in, grads out too)."""
    u, B = ins["u"], ins["B"]
    io = u.numel() * u.element_size()
    bc = B.numel() * B.element_size()
    return 3 * io + 2 * bc if not backward else 3 * io + 2 * bc + 3 * io + 2 * bc * 2  # grads of B, C in fp32


def timings(impls, ins, device, label):
    rows = []
    leaves = {k: v.detach().clone().requires_grad_() for k, v in ins.items()}
    dy = torch.randn_like(ins["u"])
    for name, fn in impls.items():
        def fwd():
            with torch.no_grad():
                fn(**ins)

        def fwd_bwd():
            fn(**leaves).backward(dy)

        ms_f = bench(fwd, device)
        ms_fb = bench(fwd_bwd, device, reps=5 if name == "ref" else 20)
        rows.append({"case": label, "impl": name, "fwd_ms": ms_f, "fwd_bwd_ms": ms_fb,
                     "fwd_GBps": scan_bytes(ins, False) / ms_f / 1e6,
                     "fwd_bwd_GBps": (scan_bytes(ins, False) + scan_bytes(ins, True)) / ms_fb / 1e6})
    return rows


def sweep(ins, device, label, kernels=("seq", "chunked")):
    """Forward times of the Triton kernels over launch settings (no gradient, no checkpoints)."""
    from medsegmamba.ops.triton.selective_scan import selective_scan_triton

    settings = [("seq", dict(block_d=bd, num_warps=w)) for bd, w in SEQ_SWEEP if "seq" in kernels]
    settings += [("chunked", dict(block_d=bd, chunk_t=t, num_warps=w)) for bd, t, w in CHUNKED_SWEEP
                 if "chunked" in kernels]
    rows = []
    for kernel, cfg in settings:
        row = {"case": label, "kernel": kernel, "block_d": cfg["block_d"], "T": cfg.get("chunk_t", 1),
               "num_warps": cfg["num_warps"]}
        fn = partial(selective_scan_triton, **ins, kernel=kernel, **cfg)
        try:
            with torch.no_grad():
                ms = bench(fn, device)
            row |= {"fwd_ms": ms, "fwd_GBps": scan_bytes(ins, False) / ms / 1e6}
        except Exception as exc:  # a setting that does not compile is a result, not a crash
            row["error"] = repr(exc)[:200]
        rows.append(row)
    return rows


def bwd_sweep(ins, device, label):
    """Forward+backward times of the chunked backward over its launch settings (chunked forward)."""
    from medsegmamba.ops.triton.selective_scan import selective_scan_triton

    leaves = {k: v.detach().clone().requires_grad_() for k, v in ins.items()}
    dy = torch.randn_like(ins["u"])
    rows = []
    for bd, t, w in BWD_SWEEP:
        row = {"case": label, "kernel": "bwd-chunked", "block_d": bd, "T": t, "num_warps": w}
        fn = partial(selective_scan_triton, **leaves, kernel="chunked", bwd_kernel="chunked", bwd_launch=(bd, t, w))
        try:
            row["fwd_bwd_ms"] = bench(lambda: fn().backward(dy), device)
        except Exception as exc:  # a setting that does not compile is a result, not a crash
            row["error"] = repr(exc)[:200]
        rows.append(row)
    return rows


def markdown(res):
    lines = [f"device: {res['device']}; copy bandwidth {res['copy_GBps']:.0f} GB/s"]
    if res["accuracy"]:
        keys = [k for k in res["accuracy"][0] if k not in ("case", "impl")]
        lines += ["", "relative error ||out - ref|| / ||ref|| (ref: float64 on the same device)", "",
                  "| case | impl | " + " | ".join(keys) + " |", "|---" * (len(keys) + 2) + "|"]
        for row in res["accuracy"]:
            lines.append(f"| {row['case']} | {row['impl']} | " + " | ".join(f"{row[k]:.2e}" for k in keys) + " |")
    if res["timings"]:
        lines += ["", "| case | impl | fwd ms | fwd GB/s | fwd+bwd ms | fwd+bwd GB/s |", "|---|---|---|---|---|---|"]
        for row in res["timings"]:
            lines.append(f"| {row['case']} | {row['impl']} | {row['fwd_ms']:.3f} | {row['fwd_GBps']:.0f} | "
                         f"{row['fwd_bwd_ms']:.3f} | {row['fwd_bwd_GBps']:.0f} |")
    if res["sweep"]:
        lines += ["", "forward only, launch settings (T: steps per chunk; 1 for seq)", "",
                  "| case | kernel | block_d | T | num_warps | fwd ms | fwd GB/s |", "|---|---|---|---|---|---|---|"]
        for row in res["sweep"]:
            ms = f"{row['fwd_ms']:.3f} | {row['fwd_GBps']:.0f}" if "fwd_ms" in row else f"{row['error']} | -"
            lines.append(f"| {row['case']} | {row['kernel']} | {row['block_d']} | {row['T']} | {row['num_warps']} | "
                         f"{ms} |")
    if res["bwd_sweep"]:
        lines += ["", "chunked backward, launch settings (forward+backward after the chunked forward)", "",
                  "| case | block_d | T | num_warps | fwd+bwd ms |", "|---|---|---|---|---|"]
        for row in res["bwd_sweep"]:
            ms = f"{row['fwd_bwd_ms']:.3f}" if "fwd_bwd_ms" in row else row["error"]
            lines.append(f"| {row['case']} | {row['block_d']} | {row['T']} | {row['num_warps']} | {ms} |")
    return "\n".join(lines)


def summary(res):
    """The headline: forward ms of each kernel per case, default and best launch setting."""
    lines = ["", "summary (ms; default launch settings unless named)", "",
             "| case | impl | fwd | fwd+bwd | best in sweep (block_d/T/warps; bwd-chunked: fwd+bwd) |",
             "|---|---|---|---|---|"]
    best = {}
    for row in res["sweep"] + res["bwd_sweep"]:
        key, ms = (row["case"], row["kernel"]), "fwd_ms" if "fwd_ms" in row else "fwd_bwd_ms"
        if ms in row and (key not in best or row[ms] < best[key][ms]):
            best[key] = row | {"ms": row[ms]}
    for row in res["timings"]:
        kernel = "bwd-chunked" if row["impl"].endswith("/bwd-chunked") else row["impl"].removeprefix("triton-")
        b = best.get((row["case"], kernel))
        tag = f"{b['ms']:.3f} ({b['block_d']}/{b['T']}/{b['num_warps']})" if b else "-"
        lines.append(f"| {row['case']} | {row['impl']} | {row['fwd_ms']:.3f} | {row['fwd_bwd_ms']:.3f} | {tag} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path, help="folder for results.json and results.md")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes on the CPU, reference only")
    parser.add_argument("--size", default="8192,8,64,1728",
                        help="D,G,N,L of one scan call at batch 1 (default: the paper network's)")
    parser.add_argument("--parts", default=",".join(PARTS),
                        help=f"comma-separated subset of {','.join(PARTS)} (default: all)")
    parser.add_argument("--fwd-sweep", default=None, metavar="BD,T,W ...",
                        help="the chunked forward's launch settings to sweep, space-separated "
                             "block_d,T,num_warps triples (default: CHUNKED_SWEEP); the sequential "
                             "forward and the backward sweeps are skipped when given")
    args = parser.parse_args(argv)
    if args.fwd_sweep is not None:
        try:
            CHUNKED_SWEEP[:] = [tuple(int(v) for v in t.split(",")) for t in args.fwd_sweep.split()]
            if not CHUNKED_SWEEP or any(len(t) != 3 for t in CHUNKED_SWEEP):
                raise ValueError
        except ValueError:
            parser.error(f"--fwd-sweep must be block_d,T,num_warps triples, got {args.fwd_sweep!r}")
    parts = [p for p in args.parts.split(",") if p]
    if not parts or any(p not in PARTS for p in parts):
        parser.error(f"--parts must be a comma-separated subset of {','.join(PARTS)}, got {args.parts!r}")
    try:
        size = tuple(int(v) for v in args.size.split(","))
        if len(size) != 4 or min(size) < 1 or size[0] % size[1]:
            raise ValueError
    except ValueError:
        parser.error(f"--size must be D,G,N,L (positive, G dividing D), got {args.size!r}")
    args.out.mkdir(parents=True, exist_ok=True)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    if args.smoke:
        device, (dim, groups, n, length), subset = torch.device("cpu"), (64, 8, 8, 96), 4
    else:
        if not torch.cuda.is_available():
            parser.error("CUDA is not available; use --smoke on the CPU")
        device, (dim, groups, n, length) = torch.device("cuda"), size
        subset = min(64, dim // groups)
    fast = {"ref": selective_scan_ref}
    if device.type == "cuda":
        from medsegmamba.ops.triton.selective_scan import selective_scan_triton

        fast = {f"triton-{k}": partial(selective_scan_triton, kernel=k, bwd_kernel="seq") for k in ("seq", "chunked")}
        fast["triton-chunked/bwd-chunked"] = partial(selective_scan_triton, kernel="chunked", bwd_kernel="chunked")
    # the chunked backward after the sequential forward too, which writes the checkpoints itself
    checked = fast | ({"triton-seq/bwd-chunked": partial(selective_scan_triton, kernel="seq", bwd_kernel="chunked")}
                      if device.type == "cuda" else {})
    res = {"device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
           "sizes": {"D": dim, "G": groups, "N": n, "L": length}, "copy_GBps": copy_bandwidth(device),
           "accuracy": [], "timings": [], "sweep": [], "bwd_sweep": []}
    dtypes = (torch.float32, torch.bfloat16)
    if "accuracy" in parts:
        for dtype in dtypes:
            tag = str(dtype).removeprefix("torch.")
            res["accuracy"] += accuracy(checked, make_inputs(1, dim, groups, n, length, device, dtype), f"Bt=1 {tag}")
            big = make_inputs(8, dim, groups, n, length, device, dtype, seed=1)
            res["accuracy"] += accuracy(checked, channel_subset(big, groups, subset), f"Bt=8 {tag} ({subset}/group)")
            del big
    if "timings" in parts:
        for batch in (1, 8):
            for dtype in dtypes:
                ins = make_inputs(batch, dim, groups, n, length, device, dtype)
                label = f"Bt={batch} {str(dtype).removeprefix('torch.')}"
                impls = fast | {"ref": selective_scan_ref} if batch == 1 else fast
                res["timings"] += timings(impls, ins, device, label)
                del ins
    if "sweep" in parts and device.type == "cuda":
        fwd_only = args.fwd_sweep is not None
        for dtype, kernels in ((torch.float32, ("chunked",) if fwd_only else ("seq", "chunked")),
                               (torch.bfloat16, ("chunked",))):
            label = f"Bt=1 {str(dtype).removeprefix('torch.')}"
            res["sweep"] += sweep(make_inputs(1, dim, groups, n, length, device, dtype), device, label, kernels)
        if not fwd_only:
            ins = make_inputs(1, dim, groups, n, length, device, torch.float32)
            res["bwd_sweep"] = bwd_sweep(ins, device, "Bt=1 float32")
    (args.out / "results.json").write_text(json.dumps(res, indent=1))
    table = markdown(res) + "\n" + (summary(res) if res["timings"] else "")
    (args.out / "results.md").write_text(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
