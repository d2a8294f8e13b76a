"""How far a subject's image supports its aseg's inferior lateral ventricles (5, 44); written for fsaverage.

fsaverage's orig.mgz is an average of 40 subjects, so each temporal horn is a shallow trough
rather than a dark slit, and its aseg labels only part of that trough. This prints, as markdown:
1. T1 percentiles (10th / 50th / 90th) of each horn and of its neighbours in aseg: the horns'
   voxels are as bright as the hippocampus and amygdala around them;
2. an intensity oracle: the best Dice any rule "darker than X, within R voxels of aseg's own horn"
   reaches. It is told where the horn is, which a model is not, and it still scores below 0.60;
3. with --pred, the prediction's horns: size, Dice, and the aseg labels of the voxels it adds, with
   their T1, beside aseg's horn.
Seconds on a 2-core CPU.
    python3 scripts/horn_ceiling.py SUBJECT_DIR [--pred PRED_ASEG]   # SUBJECT_DIR holds orig.mgz, aseg.mgz
"""
import argparse
import sys
from pathlib import Path

import nibabel as nib
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "MedSegMamba"))
from medsegmamba.labels import ASEG  # noqa: E402
from medsegmamba.pipeline.patches import within  # noqa: E402

SIDES = {"left": (5, 4, 17, 18, 2), "right": (44, 43, 53, 54, 41)}  # horn, ventricle, hippo, amygdala, WM
RADII = (2, 3, 5)
THRESHOLDS = (60, 64, 68, 72, 76, 80)
# cerebral white matter and cortex are not classes of the model, but aseg labels them
NAMES = {2: "Left-Cerebral-White-Matter", 3: "Left-Cerebral-Cortex", 41: "Right-Cerebral-White-Matter",
         42: "Right-Cerebral-Cortex", **{s.label: s.name for s in ASEG}}


def pct(values) -> str:
    return "/".join(f"{v:.0f}" for v in np.percentile(values, (10, 50, 90))) if values.size else "-"


def dice(a, b) -> float:
    return 2.0 * (a & b).sum() / max(a.sum() + b.sum(), 1)


def intensity_table(ref, img) -> str:
    rows = ["| side | T1 of aseg's horn | lateral ventricle, 2 voxels in | hippocampus | amygdala | white matter |",
            "|---|---|---|---|---|---|"]
    for side, (horn, vent, hip, amy, wm) in SIDES.items():
        core = (ref == vent) & ~within(ref != vent, 2.0)
        rows.append(f"| {side} | {pct(img[ref == horn])} | {pct(img[core])} | {pct(img[ref == hip])} | "
                    f"{pct(img[ref == amy])} | {pct(img[ref == wm])} |")
    return "\n".join(rows)


def oracle_table(ref, img) -> str:
    """Voxels darker than X within R voxels of aseg's horn: their count and Dice, per X and R."""
    rows = ["| side | R | " + " | ".join(f"X {t}" for t in THRESHOLDS) + " | best Dice |",
            "|---|---:|" + "---:|" * (len(THRESHOLDS) + 1)]
    for side, (horn, *_) in SIDES.items():
        truth = ref == horn
        for r in RADII:
            near = within(truth, float(r))
            cells = [(int((near & (img < t)).sum()), dice(near & (img < t), truth)) for t in THRESHOLDS]
            rows.append(f"| {side} | {r} | " + " | ".join(f"{n} / {d:.3f}" for n, d in cells)
                        + f" | {max(d for _, d in cells):.3f} |")
    return "\n".join(rows)


def prediction_table(ref, img, pred) -> str:
    """Each predicted horn's size and Dice, and the aseg labels (with their T1) of the voxels it adds."""
    rows = ["| side | aseg horn | predicted | Dice | aseg label of the added voxels: count, T1 |",
            "|---|---:|---:|---:|---|"]
    for side, (horn, *_) in SIDES.items():
        truth, mine = ref == horn, pred == horn
        added = mine & ~truth
        labels, counts = np.unique(ref[added], return_counts=True)
        parts = [f"{NAMES.get(int(v), v)} {c}, {pct(img[added & (ref == v)])}"
                 for v, c in sorted(zip(labels, counts), key=lambda x: -x[1]) if c >= 10]
        rows.append(f"| {side} | {truth.sum()} | {mine.sum()} | {dice(mine, truth):.3f} | {'; '.join(parts)} |")
    return "\n".join(rows)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("subject", type=Path, help="a folder with orig.mgz and aseg.mgz, such as fsaverage's")
    ap.add_argument("--pred", type=Path, help="a predicted aseg of SUBJECT/orig.mgz")
    a = ap.parse_args(argv)
    ref = np.asarray(nib.load(a.subject / "aseg.mgz").dataobj).astype(np.int64)
    img = np.asarray(nib.load(a.subject / "orig.mgz").dataobj).astype(np.float32)
    print(intensity_table(ref, img))
    print("\nThe oracle: voxels darker than X within R voxels of aseg's horn (voxels / Dice).\n")
    print(oracle_table(ref, img))
    if a.pred:
        pred = np.asarray(nib.load(a.pred).dataobj).astype(np.int64)
        print(f"\nThe prediction ({a.pred.name}): the voxels it calls horn that aseg labels otherwise.\n")
        print(prediction_table(ref, img, pred))
    return 0


if __name__ == "__main__":
    sys.exit(main())
