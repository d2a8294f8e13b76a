"""Each convolution of the paper network alone: its time per patch and the kernels cuDNN runs for
it, in the memory layout it meets inside the network; and where torch.compile splits the network.

Session 17's profile of the compiled network (bf16, batch 8, H200) spent 1.5 of its 10.8 ms per patch
in cuDNN's layout transforms (nchwToNhwc, nhwcToNchw, tensorTransformGeneric), in both memory
layouts of the model. This finds which convolutions pay them: it records every Conv3d's input
(shape and strides) during one eager forward pass, replays each distinct one alone under the
profiler, and reports its time and kernels; and it asks dynamo how many graphs the compiled forward
becomes (inductor decides each graph's memory layout on its own).

    python3 benchmarks/conv_layers_gpu.py --out "$OUT"            # CUDA, paper network, ~1 min
    python3 benchmarks/conv_layers_gpu.py --out /tmp/c --smoke    # CPU, tiny widths, seconds
"""

from __future__ import annotations

import argparse
import datetime
import json
import re
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).resolve().parent))
from model_gpu import PAPER, TINY, autocast, build, timed  # noqa: E402
from profile_gpu import LAYOUTS, device_times  # noqa: E402

TRANSFORM = re.compile(r"nchwToNhwc|nhwcToNchw|tensorTransform", re.IGNORECASE)


def layout_of(t: torch.Tensor) -> str:
    if t.is_contiguous():
        return "contiguous"
    if t.is_contiguous(memory_format=torch.channels_last_3d):
        return "channels_last_3d"
    return "strided"


def record_convs(model, x, device, dtype):
    """{key: {"module", "names", "shape", "stride"}} of every Conv3d call in one forward pass, the
    key being what makes two calls the same work (input shape and strides, the convolution)."""
    seen: dict[tuple, dict] = {}

    def hook(name):
        def fn(mod, args, _out):
            inp = args[0]
            key = (tuple(inp.shape), inp.stride(), tuple(mod.weight.shape), mod.weight.stride(),
                   mod.stride, mod.padding, mod.groups)
            seen.setdefault(key, {"module": mod, "names": [], "shape": tuple(inp.shape),
                                  "stride": inp.stride(), "layout": layout_of(inp)})["names"].append(name)
        return fn

    handles = [m.register_forward_hook(hook(n)) for n, m in model.named_modules()
               if isinstance(m, torch.nn.Conv3d)]
    try:
        with torch.inference_mode(), autocast(device, dtype):
            model.eval()(x)
    finally:
        for h in handles:
            h.remove()
    return seen


def replay(entry, device, dtype, batch, warmup, iters, train=False, layout=None):
    """One recorded convolution alone, on random data in the recorded strides (or in `layout`,
    "contiguous" or "channels_last_3d", input and weight): ms per patch for all its calls in the
    network, the share of that in layout transforms, and its kernels. `train`: forward and backward
    (input, weight and bias gradients, the output's gradient in the output's layout)."""
    mod = entry["module"]
    cdt = torch.bfloat16 if dtype == "bf16" else torch.float32
    x = torch.empty_strided(entry["shape"], entry["stride"], device=device, dtype=cdt).normal_()
    w = mod.weight.detach().to(cdt)  # keeps the weight's memory format, as autocast's cast does
    b = None if mod.bias is None else mod.bias.detach().to(cdt)
    if layout is not None:
        fmt = torch.channels_last_3d if layout == "channels_last_3d" else torch.contiguous_format
        x, w = x.contiguous(memory_format=fmt), w.contiguous(memory_format=fmt)
    args = (mod.stride, mod.padding, mod.dilation, mod.groups)
    if train:
        x, w = x.requires_grad_(), w.requires_grad_()
        b = None if b is None else b.requires_grad_()
        gy = torch.empty_like(F.conv3d(x.detach(), w.detach(), None if b is None else b.detach(), *args)).normal_()

        def fn():
            y = F.conv3d(x, w, b, *args)
            torch.autograd.grad(y, [t for t in (x, w, b) if t is not None], gy)
    else:
        def fn():
            with torch.inference_mode():
                F.conv3d(x, w, b, *args)

    calls = len(entry["names"])
    ms = timed(fn, device, warmup, iters) * calls / batch
    kernels: dict[str, float] = {}
    if device.type == "cuda":
        with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
            for _ in range(iters):
                fn()
            torch.cuda.synchronize()
        kernels = {k: v * calls / (iters * batch) for k, v in device_times(prof, on_gpu=True).items()}
    transform = sum(v for k, v in kernels.items() if TRANSFORM.search(k))
    return {"names": entry["names"], "calls": calls, "in_shape": list(entry["shape"][1:]),
            "in_layout": layout or entry["layout"], "weight": list(mod.weight.shape), "groups": mod.groups,
            "ms_per_patch": ms, "transform_ms_per_patch": transform,
            "kernels": [{"name": k[:100], "ms_per_patch": v} for k, v in sorted(kernels.items(), key=lambda kv: -kv[1])]}


def graph_count(model, x, device, dtype):
    """How many graphs dynamo makes of the inference forward, and why it breaks (no compilation)."""
    torch._dynamo.reset()
    with torch.inference_mode(), autocast(device, dtype):
        ex = torch._dynamo.explain(model.eval())(x)
    reasons = sorted({str(getattr(b, "reason", b)).splitlines()[0][:160] for b in ex.break_reasons})
    return {"graphs": ex.graph_count, "breaks": ex.graph_break_count, "reasons": reasons}


def to_markdown(meta, layouts, graphs) -> str:
    lines = [f"# Convolutions one by one: {meta['device']}, torch {meta['torch']}, {meta['date']}", "",
             f"network: {meta['config']}; {meta['dtype']}, batch {meta['batch']}, eager, each convolution "
             f"replayed alone on its recorded input shape ({'forward + backward' if meta.get('train') else 'forward'}; "
             "cudnn.benchmark on)", ""]
    for name, rows in layouts.items():
        total = sum(r["ms_per_patch"] for r in rows)
        transform = sum(r["transform_ms_per_patch"] for r in rows)
        lines += [f"## model {name}: {total:.2f} ms per patch in convolutions, {transform:.2f} of it in layout transforms", "",
                  "| convolution (first of its calls) | calls | input C, D, H, W | input layout | weight | groups "
                  "| ms / patch | transforms | top kernels (ms / patch) |", "|---|---:|---|---|---|---:|---:|---:|---|"]
        for r in sorted(rows, key=lambda r: -r["ms_per_patch"]):
            top = "; ".join(f"`{k['name'][:60]}` {k['ms_per_patch']:.3f}" for k in r["kernels"][:3])
            lines.append(f"| {r['names'][0]} | {r['calls']} | {r['in_shape']} | {r['in_layout']} | {r['weight']} "
                         f"| {r['groups']} | {r['ms_per_patch']:.3f} | {r['transform_ms_per_patch']:.3f} | {top} |")
        lines.append("")
    if graphs:
        lines += [f"torch.compile (dynamo explain, inference): {graphs['graphs']} graphs, "
                  f"{graphs['breaks']} breaks", ""]
        lines += [f"- {r}" for r in graphs["reasons"]]
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, type=Path, help="folder for results.json and results.md")
    ap.add_argument("--smoke", action="store_true", help="CPU, tiny widths, 32^3 patches")
    ap.add_argument("--batch", type=int, default=None, help="patches per call (default 8, smoke 1)")
    ap.add_argument("--channels-last", default="both", choices=("no", "yes", "both"),
                    help="model and input in channels_last_3d memory")
    ap.add_argument("--no-explain", action="store_true", help="skip dynamo's graph count")
    ap.add_argument("--train", action="store_true",
                    help="forward + backward of each convolution (the training step's), not the forward alone")
    ap.add_argument("--relayout", action="store_true",
                    help="also replay each convolution with input and weight in the other memory layout")
    args = ap.parse_args(argv)
    device = torch.device("cpu" if args.smoke or not torch.cuda.is_available() else "cuda")
    if device.type == "cpu" and not args.smoke:
        ap.error("--smoke is required without CUDA")
    if args.batch is not None and args.batch < 1:
        ap.error(f"--batch must be at least 1, got {args.batch}")
    torch.backends.cudnn.benchmark = True
    cfg = TINY if args.smoke else PAPER
    patch = cfg.get("patch_size", 96)
    batch = args.batch or (1 if args.smoke else 8)
    dtype = "fp32" if args.smoke else "bf16"
    warmup, iters = (1, 2) if args.smoke else (3, 10)
    layouts, graphs = {}, None
    for cl in LAYOUTS[args.channels_last]:
        model = build("ours+fusedGN", cfg, device, None, cl)
        x = torch.rand(batch, 1, patch, patch, patch, device=device)
        if cl:
            x = x.contiguous(memory_format=torch.channels_last_3d)
        seen = record_convs(model, x, device, dtype)
        name = "channels_last_3d" if cl else "contiguous"
        layouts[name] = [replay(e, device, dtype, batch, warmup, iters, args.train) for e in seen.values()]
        if args.relayout:  # the same convolutions with input and weight in the other layout
            other = "contiguous" if cl else "channels_last_3d"
            layouts[f"{name}, replayed in {other}"] = [
                replay(e, device, dtype, batch, warmup, iters, args.train, other) for e in seen.values()]
        if graphs is None and not args.no_explain:
            graphs = graph_count(model, x[:1], device, dtype)
    meta = {"device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
            "torch": torch.__version__,
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "config": {k: list(v) if isinstance(v, tuple) else v for k, v in cfg.items()},
            "patch": patch, "batch": batch, "dtype": dtype, "train": args.train}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps({"meta": meta, "layouts": layouts, "graphs": graphs}, indent=2))
    md = to_markdown(meta, layouts, graphs)
    (args.out / "results.md").write_text(md + "\n")
    print(md)


if __name__ == "__main__":
    main()
