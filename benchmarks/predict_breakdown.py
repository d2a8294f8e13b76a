#!/usr/bin/env python3
"""Where the predict stage of one scan goes: the coarse pass, the box search, the fine pass, and
inside each pass the network's forwards against the rest (patch stacking, adding, argmax).

    python3 benchmarks/predict_breakdown.py --input .data/mni152_t1.nii.gz --model paper \
        --locator MedSegMamba/medsegmamba/weights/default.safetensors --step 32 --batch-size 16

Each part is timed with CUDA synchronised before and after it, so the parts add up to the stage
(the synchronisations cost a little of what they measure). One warm-up run, then `--repeat` runs;
the table gives the median of each part. Prints a markdown table; writes nothing.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "MedSegMamba"))  # run from a bare checkout


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", required=True)
    parser.add_argument("--model", default="paper", help="preset (random weights) or weights path")
    parser.add_argument("--locator", default=None)
    parser.add_argument("--step", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--device", default="cuda", help="cuda, or cpu for a smoke run")
    args = parser.parse_args(argv)

    import torch

    from medsegmamba import io
    from medsegmamba.pipeline import focus
    from medsegmamba.pipeline.benchmark import make_model
    from medsegmamba.pipeline.segment import SegmentOptions, Segmenter

    device = torch.device(args.device)

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()
    parts: dict[str, float] = defaultdict(float)

    def timed(name, fn):
        def wrapper(*a, **k):
            sync()
            start = time.perf_counter()
            out = fn(*a, **k)
            sync()
            parts[name] += time.perf_counter() - start
            return out
        return wrapper

    segmenter = Segmenter(SegmentOptions(model=make_model(args.model, device).network,
                                         locator=args.locator, step=args.step,
                                         batch_size=args.batch_size, device=args.device, qc=False,
                                         tta=False))  # one pass, as its earlier results were timed
    for loaded, name in ((segmenter.model, "network forward (fine)"), (segmenter.locator, "network forward (coarse)")):
        if loaded is not None:
            loaded.network.forward = timed(name, loaded.network.forward)
    focus.structures_box = timed("box search (structures_box)", focus.structures_box)
    original = focus.classes_in_box
    focus.classes_in_box = lambda *a, **k: timed(f"pass total ({k.get('name', a[8] if len(a) > 8 else '?')})",
                                                 original)(*a, **k)
    volume = io.read_volume(args.input)
    runs = []
    for i in range(args.repeat + 1):
        parts.clear()
        sync()
        start = time.perf_counter()
        result = segmenter.segment_volume(volume)
        parts["predict stage"] = result.timings["predict"]
        parts["segment_volume total (no read, no write)"] = time.perf_counter() - start
        if i:
            runs.append(dict(parts))
    name = torch.cuda.get_device_name() if device.type == "cuda" else "cpu"
    print(f"device: {name}; input {args.input} {volume.data.shape}; model {args.model}; "
          f"locator {args.locator}; step {args.step}; batch {args.batch_size}; patches {result.patches}; "
          f"median of {args.repeat} runs after a warm-up")
    print("\n| part | ms |\n|---|---:|")
    for name in runs[0]:
        print(f"| {name} | {1000 * statistics.median(r[name] for r in runs):.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
