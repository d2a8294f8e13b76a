"""Where the paper network's time goes: a profile of inference and of a training step per 96^3 patch.

Issue #2's targets (5 ms per patch for inference, 30 ms for training) are 4-5x away (model_gpu.py),
and the scan is no longer the main cost. This splits the device time by kind of kernel
(convolution, matrix multiply, scan, normalisation, elementwise, copies) and lists the top kernels,
with the network's convolution and matmul FLOPs, so that the next optimisation aims at the
largest part.

    python3 benchmarks/profile_gpu.py --out "$OUT"            # CUDA, paper network, ~1 min
    python3 benchmarks/profile_gpu.py --out /tmp/p --smoke    # CPU, tiny widths, seconds

--ops N also lists the N operators whose own kernels take the most device time, each with the
Python lines that called it (recorded with the profiler's stacks): a kernel name such as
direct_copy_kernel_cuda says what ran, not which operator, inside which op or compiled graph, asked for it.
"""

from __future__ import annotations

import argparse
import datetime
import json
import re
import sys
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent))
from model_gpu import PAPER, TINY, autocast, build, timed  # noqa: E402

# Kernel (GPU) or operator (CPU) name -> kind; first match wins, so the specific come first.
KINDS = (
    ("scan", r"scan|selective"),
    ("norm", r"norm|_gn_|welford"),
    ("convolution", r"conv|cudnn|implicit|wgrad|dgrad|fprop|xmma|mkldnn|slow_conv"),
    ("matmul", r"gemm|cutlass|\bmm\b|aten::mm|bmm|addmm|matmul|linear|nvjet|sm90_"),
    ("copy / layout", r"copy|transpose|permute|cat|contiguous|memcpy|clone|flip"),
    ("elementwise", r"elementwise|vectorized|unrolled|reduce|softmax|softplus|silu|gelu|exp|mul|add"
                    r"|sum|mean|triton_|fused"),
)


# --channels-last: the memory layouts to run, model and input in channels_last_3d or not
LAYOUTS = {"no": [False], "yes": [True], "both": [False, True]}


def kind_of(name: str) -> str:
    low = name.lower()
    for kind, pattern in KINDS:
        if re.search(pattern, low):
            return kind
    return "other"


def flops_per_patch(model, patch, device) -> float:
    """Convolution + matmul FLOPs of one forward pass (torch's counter; elementwise work not counted)."""
    x = torch.rand(1, 1, patch, patch, patch, device=device)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model.eval()(x)
    return float(counter.get_total_flops())


def self_time(e, on_gpu: bool) -> float:
    """An event's self time in microseconds: on its device (GPU; older torch names it "cuda") or on the CPU."""
    if not on_gpu:
        return e.self_cpu_time_total
    t = getattr(e, "self_device_time_total", None)
    return getattr(e, "self_cuda_time_total", 0.0) if t is None else t


def device_times(prof, on_gpu: bool) -> dict[str, float]:
    """Self time (ms) per kernel (GPU) or per operator (CPU) over the profiled region."""
    out: dict[str, float] = {}
    for e in prof.key_averages():
        t = self_time(e, on_gpu)
        if on_gpu:
            if not str(getattr(e, "device_type", "")).endswith("CUDA") or t <= 0:
                continue
        elif t <= 0 or not e.key.startswith("aten::"):
            continue
        out[e.key] = out.get(e.key, 0.0) + t / 1e3
    return out


def operator_times(prof, on_gpu: bool, top_n: int, patches: int) -> list[dict]:
    """The `top_n` (operator, caller) pairs by the self time of their own kernels (GPU) or their own
    CPU time: ms per patch (the profiled region held `patches`), calls, and the innermost Python frames outside
    torch that led to them (the profiler records frames as the operators' parent events; a compiled
    graph's frames are inductor's generated module), after the autograd node for the backward's."""
    sums: dict[tuple, list] = {}
    for e in prof.events():
        if not e.name.startswith("aten::"):
            continue
        t = self_time(e, on_gpu)
        if t <= 0:
            continue
        frames, parent = [], e.cpu_parent
        while parent is not None and len(frames) < 3:
            if ".py(" in parent.name and "torch/" not in parent.name.split(".py(")[0]:
                frames.append(parent.name)
            elif parent.name.startswith("autograd::engine::evaluate_function: ") and not frames:
                frames.append(parent.name.split(": ", 1)[1])  # in the backward: the node that ran it
            parent = parent.cpu_parent
        entry = sums.setdefault((e.name, tuple(frames)), [0.0, 0])
        entry[0] += t / 1e3
        entry[1] += 1
    rows = [{"op": op, "ms_per_patch": ms / patches, "calls": n, "stack": list(frames)}
            for (op, frames), (ms, n) in sums.items()]
    return sorted(rows, key=lambda r: -r["ms_per_patch"])[:top_n]


def profile_case(model, mode, dtype, batch, patch, device, iters, channels_last=False, top_n=25, ops_n=0):
    x = torch.rand(batch, 1, patch, patch, patch, device=device)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last_3d)
    target = torch.randint(0, model.num_classes, (batch, patch, patch, patch), device=device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4) if mode == "train" else None

    def step():
        if mode == "infer":
            with torch.inference_mode(), autocast(device, dtype):
                model.eval()(x)
        else:
            model.train()
            opt.zero_grad(set_to_none=True)
            with autocast(device, dtype):
                loss = torch.nn.functional.cross_entropy(model(x).float(), target)
            loss.backward()
            opt.step()

    for _ in range(2):  # warm-up: autotuning, cudnn.benchmark
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    # stacks only on request: recording them slows the host side of every step
    with profile(activities=activities, with_stack=ops_n > 0) as prof:
        for _ in range(iters):
            step()
        if device.type == "cuda":
            torch.cuda.synchronize()
    times = device_times(prof, device.type == "cuda")
    per_patch = {k: v / (iters * batch) for k, v in times.items()}
    # wall time too: the profile sums kernel time, which hides gaps between kernels
    wall = timed(step, device, 1, max(iters, 5)) / batch
    kinds: dict[str, float] = {}
    for name, ms in per_patch.items():
        kinds[kind_of(name)] = kinds.get(kind_of(name), 0.0) + ms
    top = sorted(per_patch.items(), key=lambda kv: -kv[1])[:top_n]
    ops = operator_times(prof, device.type == "cuda", ops_n, iters * batch) if ops_n else []
    return {"ops": ops, "mode": mode, "dtype": dtype, "batch": batch, "channels_last": channels_last,
            "ms_per_patch": sum(per_patch.values()), "wall_ms_per_patch": wall,
            "kinds": dict(sorted(kinds.items(), key=lambda kv: -kv[1])),
            "top": [{"name": n[:120], "kind": kind_of(n), "ms_per_patch": ms} for n, ms in top]}


def to_markdown(meta, cases) -> str:
    lines = [f"# Profile: {meta['device']}, torch {meta['torch']}, {meta['date']}", "",
             f"network: {meta['config']}; forward FLOPs (convolutions + matmuls) per patch: "
             f"{meta['tflop_per_patch']:.3f} TFLOP", ""]
    for c in cases:
        tf = meta["tflop_per_patch"] * (3 if c["mode"] == "train" else 1)
        layout = ", channels_last_3d" if c.get("channels_last") else ""
        wall = f" (wall {c['wall_ms_per_patch']:.1f} ms)" if "wall_ms_per_patch" in c else ""
        lines += [f"## {meta.get('variant', 'ours+fusedGN')}, {c['mode']}, {c['dtype']}, batch {c['batch']}{layout}: "
                  f"{c['ms_per_patch']:.1f} ms of device time per patch{wall} "
                  f"({tf / (c['ms_per_patch'] / 1e3):.0f} TFLOP/s of "
                  f"convolution + matmul work{', x3 for training' if c['mode'] == 'train' else ''})", "",
                  "| kind | ms / patch | share |", "|---|---:|---:|"]
        lines += [f"| {k} | {v:.2f} | {100 * v / c['ms_per_patch']:.0f} % |" for k, v in c["kinds"].items()]
        lines += ["", "| kernel | kind | ms / patch |", "|---|---|---:|"]
        lines += [f"| `{t['name']}` | {t['kind']} | {t['ms_per_patch']:.2f} |" for t in c["top"]]
        if c.get("ops"):
            lines += ["", "| operator | its own kernels, ms / patch | calls | called from (innermost first) |",
                      "|---|---:|---:|---|"]
            lines += [f"| `{o['op']}` | {o['ms_per_patch']:.2f} | {o['calls']} | "
                      f"{'<br>'.join(f'`{f}`' for f in o['stack']) or '(no Python frame)'} |" for o in c["ops"]]
        lines.append("")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, type=Path, help="folder for results.json and results.md")
    ap.add_argument("--smoke", action="store_true", help="CPU, tiny widths, 32^3 patches")
    ap.add_argument("--iters", type=int, default=None, help="profiled steps per case")
    ap.add_argument("--variant", default="ours+fusedGN",
                    choices=("ours", "ours+fusedGN", "ours+compile", "ours+fusedGN+compile", "ours+compile+forcecl",
                             "ours+fusedGN+gluon", "ours+compile+gluon", "ours+fusedGN+chunked",
                             "ours+compile+chunked"),
                    help="model_gpu.py's variant: eager (default) or torch.compile")
    ap.add_argument("--channels-last", default="no", choices=("no", "yes", "both"),
                    help="model and input in channels_last_3d memory")
    ap.add_argument("--modes", default="infer,train", help="comma-separated: infer, train")
    ap.add_argument("--train-batch", type=int, default=None, help="training step's batch (default 2; 1 with --smoke)")
    ap.add_argument("--top", type=int, default=25, help="kernels listed per case")
    ap.add_argument("--ops", type=int, default=0, help="also list this many operators by their kernels' "
                    "time, with their Python callers (records stacks)")
    args = ap.parse_args(argv)
    device = torch.device("cpu" if args.smoke or not torch.cuda.is_available() else "cuda")
    if device.type == "cpu" and not args.smoke:
        ap.error("--smoke is required without CUDA")
    torch.backends.cudnn.benchmark = True
    cfg = TINY if args.smoke else PAPER
    patch = cfg.get("patch_size", 96)
    iters = args.iters or (1 if args.smoke else 3)
    tflop = flops_per_patch(build("ours", cfg, device, None, False), patch, device) / 1e12
    dtype = "fp32" if args.smoke else "bf16"  # bf16 convolutions on the CPU take seconds
    batches = {"infer": 2 if args.smoke else 8, "train": args.train_batch or (1 if args.smoke else 2)}
    modes = args.modes.split(",")
    if not modes or set(modes) - set(batches):
        ap.error(f"--modes: expected some of infer,train, got {args.modes!r}")
    cases = []
    for cl in LAYOUTS[args.channels_last]:
        # a fresh model per layout: a compiled one is specialised to its input's strides
        model = build(args.variant, cfg, device, None, cl)
        cases += [profile_case(model, m, dtype, batches[m], patch, device, iters, cl, args.top, args.ops)
                  for m in modes]
    meta = {"device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
            "torch": torch.__version__,
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "config": {k: list(v) if isinstance(v, tuple) else v for k, v in cfg.items()},
            "patch": patch, "iters": iters, "tflop_per_patch": tflop, "variant": args.variant}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps({"meta": meta, "cases": cases}, indent=2))
    md = to_markdown(meta, cases)
    (args.out / "results.md").write_text(md + "\n")
    print(md)


if __name__ == "__main__":
    main()
