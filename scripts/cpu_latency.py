#!/usr/bin/env python3
"""Forward time per 96^3 patch on this CPU for the default model, its student and KAN-Mamba.

    python3 scripts/cpu_latency.py [--threads 2] [--repeat 3] [--out docs/distillation/cpu_latency.md]

Random weights (the time does not depend on their values, now that the scan floors exp's
argument: trained weights had sent many past float32 underflow, exp's slow path), fp32, batch 1, torch.inference_mode;
the minimum of --repeat timed runs after one warm-up. Run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import datetime
import platform
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "MedSegMamba"))

from medsegmamba.models import MedSegMamba  # noqa: E402
from medsegmamba.models.kan_mamba import build_kan_mamba  # noqa: E402
from medsegmamba.models.students import resolve_student  # noqa: E402

DEFAULT = dict(channels=(1, 8, 16, 32, 64, 128), num_blocks=9, d_state=16)


def arms(configs=()):
    """The default, its students and KAN-Mamba; with `configs` ("C0,...,C5:N", N the SSM state),
    those MedSegMamba sizes instead: candidates for a larger default."""
    if configs:
        for spec in configs:
            widths, _, d_state = spec.partition(":")
            channels = tuple(int(c) for c in widths.split(","))
            yield f"{channels} N={d_state or 16}", MedSegMamba(channels=channels, num_blocks=9,
                                                              d_state=int(d_state or 16), num_classes=32)
        return
    yield "default (teacher)", MedSegMamba(**DEFAULT, num_classes=32)
    for t in (1, 2):
        spec = resolve_student(t, DEFAULT["channels"], DEFAULT["d_state"], DEFAULT["num_blocks"])
        yield f"{spec.name} {spec.channels} N={spec.d_state}", MedSegMamba(**spec.kwargs(), num_classes=32)
    yield "kan-mamba (teacher-sized)", build_kan_mamba(**DEFAULT, num_classes=32)


def seconds_per_patch(model, repeat: int) -> float:
    x = torch.rand(1, 1, 96, 96, 96)
    with torch.inference_mode():
        model(x)
        times = []
        for _ in range(repeat):
            start = time.perf_counter()
            model(x)
            times.append(time.perf_counter() - start)
    return min(times)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path, default=None, help="also write the table (markdown) here")
    parser.add_argument("--config", action="append", default=[], metavar="C0,...,C5[:N]",
                        help="time this MedSegMamba size instead (repeatable), e.g. 1,8,16,32,64,128:16")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    lines = [f"CPU latency per 96^3 patch -- {platform.machine()}, {args.threads} threads, torch {torch.__version__}, "
             f"{datetime.date.today().isoformat()}; `python3 scripts/cpu_latency.py --threads {args.threads}"
             + "".join(f" --config {c}" for c in args.config) + "`", "",
             "| model | params | s / patch (min of %d) |" % args.repeat, "| --- | ---: | ---: |"]
    for name, model in arms(args.config):
        s = seconds_per_patch(model.eval(), args.repeat)
        lines.append(f"| {name} | {sum(p.numel() for p in model.parameters()):,} | {s:.2f} |")
        print(lines[-1], flush=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
