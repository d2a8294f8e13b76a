"""After a training run: ship its weights and keep its resumable checkpoint.

    python3 -m medsegmamba.train.publish RUN_DIR [--name default]

Copies RUN_DIR/model_fp16.safetensors (or fp32 when fp16 lost accuracy) to
medsegmamba/weights/<name>.safetensors, writes/updates its entry in weights/registry.json
(name, file, sha256, config, provenance, metrics) and copies RUN_DIR/last*.safetensors to
training/<name>/ so that the next run resumes from them.
"""

from __future__ import annotations

import argparse
import datetime
import json
import shutil
import sys
from pathlib import Path

FP16_TOLERANCE = 0.002  # mean Dice that fp16 may lose and still ship


def choose(summary: dict) -> str:
    v32, v16 = summary.get("final_val", {}), summary.get("export", {}).get("val_fp16_weights", {})
    key = "fsaverage_dice" if "fsaverage_dice" in v32 else "synth_dice"
    if key in v32 and key in v16 and v32[key] - v16[key] <= FP16_TOLERANCE:
        return "fp16"
    return "fp32"


def metrics_of(summary: dict) -> dict:
    from ..labels import ASEG

    v = summary.get("final_val", {})
    out = {"iterations": summary.get("iterations"), "synthetic_val_dice": v.get("synth_dice")}
    if "fsaverage_dice" in v:
        out["fsaverage_mean_dice_step32"] = v["fsaverage_dice"]
        out["fsaverage_dice"] = {ASEG[int(c)].name: d for c, d in v["fsaverage_per_class"].items()}
    return out


def publish(run_dir, name: str = "default", root=None, fp16: bool = False) -> dict:
    from ..models.checkpoint import read_metadata
    from ..weights import REGISTRY, WEIGHTS_DIR, sha256sum

    run_dir = Path(run_dir)
    root = Path(root) if root else Path(__file__).resolve().parents[3]
    summary = json.loads((run_dir / "summary.json").read_text())
    kind = "fp16" if fp16 else choose(summary)
    dst = WEIGHTS_DIR / f"{name}.safetensors"
    shutil.copy(run_dir / f"model_{kind}.safetensors", dst)
    config = json.loads(read_metadata(dst)["config"])
    date = datetime.date.today().isoformat()
    entry = {"name": name, "file": dst.name, "sha256": sha256sum(dst), "config": config,
             "provenance": (f"medsegmamba train, configs/{name}.json: synthetic SynthSeg-style images "
                            f"from the 20 SynthSeg training label maps (Apache-2.0); "
                            f"{summary['iterations']} iterations on {summary['device']}, {date}; "
                            f"{kind} weights"),
             "metrics": metrics_of(summary)}
    entries = json.loads(REGISTRY.read_text()) if REGISTRY.is_file() else []
    entries = [e for e in (entries.get("weights", []) if isinstance(entries, dict) else entries)
               if e.get("name") != name] + [entry]
    REGISTRY.write_text(json.dumps(entries, indent=1) + "\n")
    keep = root / "training" / name
    keep.mkdir(parents=True, exist_ok=True)
    for f in sorted(run_dir.glob("last*.safetensors")):
        shutil.copy(f, keep / f.name)
    return entry


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run_dir")
    ap.add_argument("--name", default="default")
    ap.add_argument("--fp16", action="store_true",
                    help="ship the fp16 weights whatever the validation Dice says (the locator: what "
                         "counts is its box, so compare the boxes of both first)")
    args = ap.parse_args(argv)
    entry = publish(args.run_dir, args.name, fp16=args.fp16)
    json.dump({k: entry[k] for k in ("name", "file", "sha256", "metrics")}, sys.stdout, indent=1)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
