"""GPU benchmark of the MedSegMamba network: inference and training time per 96^3 patch, peak memory.

Compares our fast layout ("ours"), ours with the fused float32-statistics GroupNorm ("ours+fusedGN")
and the authors' layout of SS3D (rot90/transposes/flips, "authors-layout"), each with the scan
implementation given by --scan-impl; on request ours compiled ("ours+compile"; "ours+fusedGN+compile" with
the fused GroupNorm, whose output keeps a channels_last_3d input's layout), compiled with
inductor's channels-last layout forced on ("ours+compile+forcecl"), "+gathered": SS3D's scan
through copies into sequences, as before session 16, instead of walking its paths, and "+gluon" or
"+chunked": the walk on that kernel ($MEDSEGMAMBA_TRITON_WALK; by default the package's choice).
Also a correctness line: bf16 autocast vs fp32 on one patch.

    python3 benchmarks/model_gpu.py --out "$OUT"             # CUDA, paper network, < 4 min
    python3 benchmarks/model_gpu.py --out /tmp/b --smoke     # CPU, tiny widths, seconds
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch
import torch._inductor.config  # noqa: F401  (build sets force_layout_optimization)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "MedSegMamba"))
from medsegmamba.models import MedSegMamba  # noqa: E402

_WALK_FROM_ENV = os.environ.get("MEDSEGMAMBA_TRITON_WALK")
PAPER = dict(channels=(1, 32, 64, 128, 256, 1024), num_blocks=9, d_state=64, num_classes=32)
DEFAULT = dict(channels=(1, 8, 16, 32, 64, 128), num_blocks=9, d_state=16, num_classes=32)  # the shipped model
TINY = dict(channels=(1, 8, 16, 32, 64, 16), num_blocks=2, d_state=4, num_classes=4, patch_size=32)


def timed(fn, device, warmup, iters):
    """Median milliseconds of fn() (CUDA events on GPU, perf_counter on CPU)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(iters):
        if device.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            torch.cuda.synchronize()
            times.append(start.elapsed_time(end))
        else:
            t = time.perf_counter()
            fn()
            times.append(1e3 * (time.perf_counter() - t))
    return statistics.median(times)


def autocast(device, dtype):
    if dtype == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def build(variant, cfg, device, scan_impl, channels_last):
    # process-wide: the variant being measured decides how every SS3D scans ("+gathered": the
    # copies into sequences that SS3D made before session 16, medsegmamba.ops.paths_route)
    os.environ["MEDSEGMAMBA_PATHS"] = "gathered" if variant.endswith("+gathered") else "walked"
    variant = variant.removesuffix("+gathered")
    # "+gluon" / "+chunked": the walk on that kernel; else the package's choice ("auto": Gluon where
    # its grid fills the GPU) or what $MEDSEGMAMBA_TRITON_WALK said when this script started
    walk = next((k for k in ("gluon", "chunked") if variant.endswith("+" + k)), _WALK_FROM_ENV)
    if walk is None:
        os.environ.pop("MEDSEGMAMBA_TRITON_WALK", None)
    else:
        os.environ["MEDSEGMAMBA_TRITON_WALK"] = walk
    variant = variant.removesuffix("+gluon").removesuffix("+chunked")
    # inductor picks each graph's memory layout by a heuristic (torch._inductor.graph.decide_layout_opt);
    # "+forcecl" overrides it, process-wide like the route above
    torch._inductor.config.force_layout_optimization = variant.endswith("+forcecl")
    variant = variant.removesuffix("+forcecl")
    torch.manual_seed(0)
    bottleneck = "vss3d-authors" if variant == "authors-layout" else "vss3d"
    m = MedSegMamba(**cfg, bottleneck=bottleneck, scan_impl=scan_impl).to(device)
    if "fusedGN" in variant.split("+"):
        m.set_fused_groupnorm(True)
    if channels_last:
        m = m.to(memory_format=torch.channels_last_3d)
    if "compile" in variant.split("+"):
        # inductor fuses the GroupNorms, activations, adds and layout copies around the convolutions
        # and the scan (issue #2's profile: over half the time); forward (inference) and
        # forward_logits (training) are compiled on the instance, so state_dict keys do not change
        m.forward = torch.compile(m.forward)
        m.forward_logits = torch.compile(m.forward_logits)
    return m


def run_case(model, device, mode, dtype, batch, patch, channels_last, warmup, iters):
    x = torch.rand(batch, 1, patch, patch, patch, device=device)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last_3d)
    if mode == "infer":
        model.eval()

        def fn():
            with torch.inference_mode(), autocast(device, dtype):
                model(x)
    else:
        model.train()

        def fn():
            with autocast(device, dtype):
                loss = model.forward_logits(x).float().mean()
            loss.backward()
            model.zero_grad(set_to_none=True)
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    try:
        ms = timed(fn, device, warmup, iters)
    except torch.OutOfMemoryError:
        return {"ms_per_patch": None, "peak_gib": None, "error": "out of memory"}
    peak = torch.cuda.max_memory_allocated() / 2 ** 30 if device.type == "cuda" else None
    return {"ms_per_patch": ms / batch, "peak_gib": peak}


def correctness(cfg, device, scan_impl, patch):
    torch.manual_seed(1)
    fast = build("ours", cfg, device, scan_impl, False).eval()
    twin = MedSegMamba(**cfg, bottleneck="vss3d-authors", scan_impl=scan_impl).to(device).eval()
    twin.load_state_dict(fast.state_dict())
    x = torch.rand(1, 1, patch, patch, patch, device=device)
    with torch.inference_mode():
        p32 = fast(x)
        with autocast(device, "bf16"):
            p16 = fast(x).float()
        pt = twin(x)
    rel = ((p16 - p32).norm() / p32.norm()).item()
    agree = (p16.argmax(1) == p32.argmax(1)).float().mean().item()
    return {"bf16_vs_fp32_rel_l2": rel, "bf16_vs_fp32_max_abs": (p16 - p32).abs().max().item(),
            "bf16_vs_fp32_argmax_agreement": agree,
            "fast_vs_authors_layout_max_abs_fp32": (pt - p32).abs().max().item()}


VARIANTS_ON_REQUEST = ("ours+fusedGN+gathered", "ours+compile", "ours+fusedGN+compile", "ours+compile+gathered",
                       "ours+compile+forcecl", "ours+fusedGN+gluon", "ours+compile+gluon", "ours+fusedGN+chunked",
                       "ours+compile+chunked")


def cases(smoke, batches=None):
    b_inf, b_train = ((1, 2), (1,)) if smoke else ((1, 8), (1, 2))
    if batches:
        b_inf, b_train = (tuple(int(b) for b in part.split(",") if b) for part in batches.split(":"))
    out = []
    for variant in ("ours", "ours+fusedGN", "authors-layout"):
        authors = variant == "authors-layout"
        for dtype in ("fp32", "bf16"):
            for cl in (False, True):
                if authors and (dtype == "fp32" or cl):
                    continue
                for b in b_inf:
                    out.append((variant, "infer", dtype, b, cl))
        for cl in ((False,) if authors else (False, True)):
            for b in b_train:
                out.append((variant, "train", "bf16", b, cl))
    for variant in VARIANTS_ON_REQUEST:  # selected with --variants
        for cl in (False, True):
            for b in b_inf:
                out.append((variant, "infer", "bf16", b, cl))
            for b in b_train:
                out.append((variant, "train", "bf16", b, cl))
    return out


def compile_check(cfg, device, scan_impl, patch):
    """Compiled against eager, the same weights, one patch under bf16 autocast."""
    torch.manual_seed(1)
    eager = build("ours", cfg, device, scan_impl, False).eval()
    compiled = torch.compile(eager)
    x = torch.rand(1, 1, patch, patch, patch, device=device)
    with torch.inference_mode(), autocast(device, "bf16"):
        pe, pc = eager(x).float(), compiled(x).float()
    return {"compiled_vs_eager_bf16_max_abs": (pc - pe).abs().max().item(),
            "compiled_vs_eager_argmax_agreement": (pc.argmax(1) == pe.argmax(1)).float().mean().item()}


def to_markdown(meta, rows, check):
    lines = [f"# Model benchmark -- {meta['device']}, torch {meta['torch']}, scan {meta['scan_impl']}, "
             f"{meta['date']}", "", f"network: {meta['config']}", "",
             "| variant | mode | dtype | batch | channels_last_3d | ms / patch | peak GiB |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        ms = "OOM" if r["ms_per_patch"] is None else f"{r['ms_per_patch']:.1f}"
        gib = "-" if r["peak_gib"] is None else f"{r['peak_gib']:.2f}"
        lines.append(f"| {r['variant']} | {r['mode']} | {r['dtype']} | {r['batch']} | "
                     f"{'yes' if r['channels_last'] else 'no'} | {ms} | {gib} |")
    lines += ["", "correctness: " + ", ".join(f"{k} = {v:.3g}" for k, v in check.items())]
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, type=Path, help="folder for results.json and results.md")
    ap.add_argument("--smoke", action="store_true", help="CPU, tiny widths, 32^3 patches")
    ap.add_argument("--scan-impl", default=None, help="selective_scan impl: auto, ref, triton, mamba_ssm")
    ap.add_argument("--iters", type=int, default=None)
    ap.add_argument("--variants", nargs="+", default=None,
                    choices=("ours", "ours+fusedGN", "authors-layout") + VARIANTS_ON_REQUEST,
                    help="only these variants (default: ours, ours+fusedGN, authors-layout)")
    layouts = ap.add_mutually_exclusive_group()
    layouts.add_argument("--no-channels-last", action="store_true", help="skip the channels_last_3d cases")
    layouts.add_argument("--only-channels-last", action="store_true", help="only the channels_last_3d cases")
    ap.add_argument("--default-model", action="store_true", help="the shipped default model's size, not the paper's")
    ap.add_argument("--batches", default=None, metavar="INFER:TRAIN",
                    help="batch sizes, e.g. 1,8:2,16 (default 1,8:1,2)")
    ap.add_argument("--no-check", action="store_true",
                    help="skip the correctness checks (bf16 against fp32, compiled against eager): timings only")
    args = ap.parse_args(argv)

    device = torch.device("cpu" if args.smoke or not torch.cuda.is_available() else "cuda")
    if device.type == "cpu" and not args.smoke:
        ap.error("--smoke is required without CUDA")
    torch.backends.cudnn.benchmark = True
    torch.backends.cuda.matmul.allow_tf32 = False  # fp32 numbers are true fp32
    torch.backends.cudnn.allow_tf32 = False
    cfg = TINY if args.smoke else DEFAULT if args.default_model else PAPER
    patch = cfg.get("patch_size", 96)
    warmup, iters = (1, args.iters or 2) if args.smoke else (3, args.iters or 10)

    rows, t0 = [], time.time()
    models = {}
    for variant, mode, dtype, batch, cl in cases(args.smoke, args.batches):
        wanted = args.variants or ("ours", "ours+fusedGN", "authors-layout")
        if variant not in wanted or (args.no_channels_last and cl) or (args.only_channels_last and not cl):
            continue
        key = (variant, cl)
        if key not in models:
            models.clear()
            if device.type == "cuda":
                torch.cuda.empty_cache()
            models[key] = build(variant, cfg, device, args.scan_impl, cl)
        n = max(2, iters // 2) if variant == "authors-layout" else iters
        r = run_case(models[key], device, mode, dtype, batch, patch, cl, warmup, n)
        rows.append(dict(variant=variant, mode=mode, dtype=dtype, batch=batch, channels_last=cl, **r))
        print(f"[{time.time() - t0:6.1f}s] {rows[-1]}", file=sys.stderr, flush=True)
    models.clear()
    check = {} if args.no_check else correctness(cfg, device, args.scan_impl, patch)
    if args.variants and "ours+compile" in args.variants and not args.no_check:
        check.update(compile_check(cfg, device, args.scan_impl, patch))

    meta = {"device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
            "torch": torch.__version__, "scan_impl": args.scan_impl or "auto",
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "config": {k: list(v) if isinstance(v, tuple) else v for k, v in cfg.items()},
            "patch": patch, "warmup": warmup, "iters": iters, "wall_s": round(time.time() - t0, 1)}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps({"meta": meta, "rows": rows, "correctness": check},
                                                      indent=2))
    md = to_markdown(meta, rows, check)
    (args.out / "results.md").write_text(md + "\n")
    print(md)


if __name__ == "__main__":
    main()
