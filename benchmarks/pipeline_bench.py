#!/usr/bin/env python3
"""End-to-end segmentation time per scan: models x steps, stage timings, peak GPU memory.

    python3 benchmarks/pipeline_bench.py --out $OUT                 # GPU: paper + small, steps 16 and 32
    python3 benchmarks/pipeline_bench.py --out /tmp/bench --smoke   # CPU, a tiny model, a few seconds

Input: a synthetic head-like volume (192x224x192, 1 mm, tilted RAS; so conform really resamples), or
--input FILE. Models: preset names with seeded random weights (paper, small, ...) or .safetensors
paths. Writes results.json and results.csv to --out; prints the summary table last.
Targets (issue #3): paper <= 1.5 s/scan at step 16 and <= 0.5 s at step 32 on one H100; peak GPU
memory <= 2 GiB at the defaults.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "MedSegMamba"))  # run from a bare checkout

TARGETS = {("paper", 16): 1.5, ("paper", 32): 0.5}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="folder for results.json and results.csv")
    parser.add_argument("--models", nargs="+", default=["paper", "small"], help="presets or checkpoint paths")
    parser.add_argument("--steps", nargs="+", type=int, default=[16, 32])
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=[0], help="0: the default")
    parser.add_argument("--tilings", nargs="+", default=["full"], choices=("focused", "full"),
                        help="focused only means something for trained weights: random ones label "
                             "everything, so the coarse pass finds the whole head (default: full)")
    parser.add_argument("--locator", default=None,
                        help="weights of focused tiling's coarse pass (e.g. the shipped default, for the "
                             "random-weight paper network)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--input", default=None, help="a T1 file instead of the synthetic head")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs after one warm-up")
    parser.add_argument("--smoke", action="store_true", help="CPU, a tiny network, a small head, one run")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")

    import torch

    from medsegmamba.pipeline.benchmark import format_results, run_benchmark, synthetic_head

    volume = None
    models = args.models
    if args.smoke:
        from medsegmamba.models import build_model, get_config

        args.device, args.steps, args.repeat = "cpu", [32], 1
        torch.manual_seed(0)
        tiny = get_config("small").replace(channels=(1, 8, 16, 32, 64, 16), num_blocks=2, d_state=4)
        models = [build_model(tiny)]
        volume = synthetic_head(shape=(40, 44, 40))  # fits one 96^3 patch
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = []
    for model in models:
        for step in args.steps:
            for batch, tiling in itertools.product(args.batch_sizes, args.tilings):
                name = model if isinstance(model, str) else "tiny (random weights)"
                try:
                    result = run_benchmark(model, input_path=args.input, device=args.device, step=step,
                                           batch_size=batch or None, repeat=args.repeat, volume=volume,
                                           tiling=tiling, locator=args.locator)
                except Exception as error:  # keep going: one failing configuration is a result too
                    logging.exception("%s step %d batch %s failed", name, step, batch)
                    results.append({"model": name, "step": step, "batch_size": batch, "tiling": tiling,
                                    "error": repr(error)})
                    continue
                target = TARGETS.get((model, step)) if isinstance(model, str) else None
                result["target_s"] = target
                result["meets_target"] = None if target is None else result["seconds"]["total"] <= target
                result["model"] = name
                results.append(result)
                (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    ok = [r for r in results if "error" not in r]
    with open(out / "results.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        stages = ["read", "conform", "predict", "native", "write", "compute", "total"]
        writer.writerow(["model", "device", "tiling", "step", "batch_size", "patches", *stages, "peak_gpu_mib",
                         "target_s", "meets_target"])
        for r in ok:
            tiling = r["tiling"] + (f" (locator {r['locator']})" if r.get("locator") else "")
            writer.writerow([r["model"], r["device_name"], tiling, r["step"], r["batch_size"], r["patches"],
                             *[f"{r['seconds'].get(s, 0):.4f}" for s in stages],
                             f"{r.get('peak_gpu_mib', 0):.0f}", r["target_s"], r["meets_target"]])
    for r in results:
        if "error" in r:
            print(f"FAILED {r['model']} {r['tiling']} step {r['step']} batch {r['batch_size']}: {r['error']}")
    if ok:
        print(f"device: {ok[0]['device_name']}; input {ok[0]['input_shape']}; median of {ok[0]['repeat']} runs (s)")
        print(format_results(ok))
    return 0 if len(ok) == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
