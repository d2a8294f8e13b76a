"""Where the paper network's arithmetic lies: convolution and matmul FLOPs of one 96^3 patch's
forward, per top-level module, counted by torch's FlopCounterMode on the meta device (no data,
no GPU, seconds).

    python3 benchmarks/flop_table.py                       # the paper network, markdown to stdout
    python3 benchmarks/flop_table.py --default-model       # the shipped default model

Issue #2 puts the paper network at ~1.05 TFLOP a patch and the chip's limit at ~1.3 ms, i.e.
~800 TFLOP/s of bf16 matrix work; the last column is each module's share of that limit. Elementwise
work (norms, activations, the scan's recurrence) is not counted: it is bound by memory traffic or,
for the scan, by the exponentials (benchmarks/results/2026-12-07-s16/).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "MedSegMamba"))
from medsegmamba.models import MedSegMamba  # noqa: E402

PAPER = dict(channels=(1, 32, 64, 128, 256, 1024), num_blocks=9, d_state=64, num_classes=32)
DEFAULT = dict(channels=(1, 8, 16, 32, 64, 128), num_blocks=9, d_state=16, num_classes=32)
ISSUE_RATE = 1.05e12 / 1.3e-3  # FLOP/s: the issue's "~1.05 TFLOP per patch ... ~1.3 ms per patch"


def flop_table(cfg: dict, patch: int = 96) -> list[tuple[str, float]]:
    """[(module, FLOPs)] of one forward pass, top-level modules in order, then ("total", FLOPs)."""
    with torch.device("meta"):
        model = MedSegMamba(**cfg, patch_size=patch).eval()
        x = torch.empty(1, cfg["channels"][0], patch, patch, patch)
    with torch.no_grad(), FlopCounterMode(display=False, depth=2) as counter:
        model(x)
    counts = counter.get_flop_counts()
    rows = [(name, float(sum(counts.get(f"MedSegMamba.{name}", {}).values())))
            for name, _ in model.named_children()]
    return [r for r in rows if r[1] > 0] + [("total", float(counter.get_total_flops()))]


def to_markdown(rows, cfg) -> str:
    total = rows[-1][1]
    lines = [f"network: {cfg}; one 96^3 patch, forward", "",
             "| module | GFLOP | share | ms at ~800 TFLOP/s |", "|---|---:|---:|---:|"]
    lines += [f"| {name} | {f / 1e9:.1f} | {100 * f / total:.0f} % | {1e3 * f / ISSUE_RATE:.3f} |" for name, f in rows]
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--default-model", action="store_true", help="the shipped default model's size")
    ap.add_argument("--patch", type=int, default=96)
    args = ap.parse_args(argv)
    cfg = DEFAULT if args.default_model else PAPER
    print(to_markdown(flop_table(cfg, args.patch), cfg))
    return 0


if __name__ == "__main__":
    sys.exit(main())
