"""How a model's Dice falls as images get blurrier: synthetic T1-like patches, extra isotropic blur.

    python3 scripts/synth_robustness.py /work/shared/data/synthseg_label_maps --out docs/robustness_default.md
    python3 scripts/synth_robustness.py MAPS --model path/to/weights.safetensors --sigmas 0,1,1.5 --patches 24
    python3 scripts/synth_robustness.py MAPS --ilv-erode 1     # every horn one voxel layer thinner
    python3 scripts/synth_robustness.py MAPS --ilv-erode 1e-9  # its control: the same patches, none thinned

Makes `--patches` fixed patches (seed `--seed`) with the training generator (T1-like contrasts
only, its own thick-slice draws left on), adds a Gaussian blur of each sigma (mm = voxels) to the
finished image, and scores the model's argmax against the targets: Dice of each class over all
patches together, and the mean over the classes present. A real scan at 1.5-2 mm, or one blurred by
motion, sits between the rows; fsaverage (an average of 40 brains) is smoother still. Runs on the CPU (or `--device cuda`).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "MedSegMamba"))
from medsegmamba.labels import ASEG  # noqa: E402
from medsegmamba.pipeline.loading import load_model  # noqa: E402
from medsegmamba.train.data import load_label_maps  # noqa: E402
from medsegmamba.train.labelmaps import LabelTable, present_values  # noqa: E402
from medsegmamba.train.synth import SynthConfig, SynthGenerator, _gaussian_blur  # noqa: E402


def generator(maps_dir, seed: int, ilv_erode: float = 0.0) -> SynthGenerator:
    """The training generator on the maps in maps_dir, T1-like contrasts only; in a share
    `ilv_erode` of the patches the inferior lateral ventricles lose one voxel layer. The images are
    made on the CPU whatever --device says, so that a seed gives the same patches."""
    maps = load_label_maps(maps_dir)
    table_ = LabelTable(set().union(*(present_values(m).tolist() for m in maps)))
    return SynthGenerator(maps, table_, SynthConfig(t1_prob=1.0, ilv_erode_prob=ilv_erode), "cpu", seed=seed)


def robustness(model, gen: SynthGenerator, patches: int, sigmas, num_classes: int = 32, device="cpu"):
    """({sigma: (num_classes,) Dice over all patches}, {sigma: (num_classes,) predicted voxel
    counts}, (num_classes,) target voxel counts); Dice is NaN for a class in neither map."""
    both = {s: np.zeros(num_classes) for s in sigmas}
    pred_n = {s: np.zeros(num_classes) for s in sigmas}
    ref_n = np.zeros(num_classes)
    with torch.inference_mode():
        for _ in range(patches):
            image, target = gen.sample(1)
            image, ref = image.to(device), target.cpu().numpy().ravel()
            ref_n += np.bincount(ref, minlength=num_classes)[:num_classes]
            for s in sigmas:
                x = _gaussian_blur(image, [s] * 3) if s > 0 else image
                pred = model.forward_logits(x).argmax(1).cpu().numpy().ravel()
                both[s] += np.bincount(ref[pred == ref], minlength=num_classes)[:num_classes]
                pred_n[s] += np.bincount(pred, minlength=num_classes)[:num_classes]
    with np.errstate(invalid="ignore", divide="ignore"):
        dice = {s: np.where(pred_n[s] + ref_n > 0, 2 * both[s] / (pred_n[s] + ref_n), np.nan) for s in sigmas}
    return dice, pred_n, ref_n


def table(dice: dict, pred_n: dict, ref_n: np.ndarray, present: np.ndarray) -> str:
    """Dice at each sigma, then predicted / target volume at each sigma (1.00: neither over- nor
    under-segmented)."""
    sigmas = list(dice)
    rows = ["| structure | " + " | ".join(f"Dice, σ {s:g} mm" for s in sigmas) + " | "
            + " | ".join(f"volume ratio, σ {s:g} mm" for s in sigmas) + " |",
            "|---|" + "---:|" * (2 * len(sigmas))]
    rows.append("| **mean** | " + " | ".join(f"**{np.nanmean(dice[s][present]):.3f}**" for s in sigmas)
                + " |" * len(sigmas) + " |")
    for c in present:
        rows.append(f"| {ASEG[c].name} | " + " | ".join(f"{dice[s][c]:.3f}" for s in sigmas) + " | "
                    + " | ".join(f"{pred_n[s][c] / ref_n[c]:.2f}" for s in sigmas) + " |")
    return "\n".join(rows)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("maps", help="folder of SynthSeg-style label maps")
    ap.add_argument("--model", default="default", help="shipped weights name or .safetensors [default]")
    ap.add_argument("--sigmas", default="0,1,1.5", help="extra blur, mm, comma-separated [0,1,1.5]")
    ap.add_argument("--patches", type=int, default=24)
    ap.add_argument("--seed", type=int, default=4242)
    ap.add_argument("--device", default="cpu", help="cpu, cuda [cpu]")
    ap.add_argument("--ilv-erode", type=float, default=0.0,
                    help="share of patches whose inferior lateral ventricles lose one voxel layer, to ask whether "
                         "the model draws a thin horn thin; any share above 0 draws the same random numbers, so "
                         "1e-9 makes the same patches as 1 without thinning them (0 makes other patches) [0]")
    ap.add_argument("--out", type=Path, help="write the markdown table here too")
    args = ap.parse_args(argv)
    if not 0.0 <= args.ilv_erode <= 1.0:
        ap.error(f"--ilv-erode is a share of the patches, from 0 to 1, got {args.ilv_erode:g}")
    sigmas = [float(s) for s in args.sigmas.split(",")]
    t0 = time.time()
    gen = generator(args.maps, args.seed, args.ilv_erode)
    model = load_model(args.model, args.device).network
    dice, pred_counts, ref_counts = robustness(model, gen, args.patches, sigmas, device=args.device)
    present = np.flatnonzero(ref_counts[1:]) + 1  # the structures in the targets (background left out)
    text = (f"# `{args.model}` on blurrier images: synthetic T1-like patches\n\n"
            f"Dice of each structure over {args.patches} fixed 96³ patches made by the training generator (T1-like "
            f"contrasts), with an extra isotropic Gaussian blur of σ mm added to each finished image; the mean is over "
            f"the {len(present)} structures present; the volume ratio is the predicted over the target voxels. Made by `python3 scripts/synth_robustness.py MAPS --model "
            f"{args.model} --sigmas {args.sigmas} --patches {args.patches} --seed {args.seed} --device {args.device}"
            + (f" --ilv-erode {args.ilv_erode:g}" if args.ilv_erode else "") + "` (MAPS: the 20 SynthSeg "
            f"training label maps) on {time.strftime('%Y-%m-%d')}, {args.device}, {time.time() - t0:.0f} s.\n\n"
            + table(dice, pred_counts, ref_counts, present) + "\n")
    print(text)
    if args.out:
        args.out.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
