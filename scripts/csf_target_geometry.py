"""Where FreeSurfer's CSF (24) lies on fsaverage, against the training target's cistern rule.

The CSF target of the default model is the maps' CSF within CISTERN_MM of a thalamus and within
VENTRICLE_MM of the third ventricle (train/labelmaps.py, cistern). This prints, as markdown:
1. positions (mm from the thalamic centroid, RAS; 10th / 50th / 90th percentiles) of fsaverage's
   aseg CSF, of the rule's CSF in each training map and, with --pred, of a prediction's CSF and of
   the aseg CSF it misses;
2. the rule's ceiling on fsaverage: the Dice between aseg's CSF and the rule applied to fsaverage's
   fluid, for a few radii. fsaverage's aseg does not label the CSF it leaves out, so its fluid is
   taken as aseg's CSF plus unlabelled voxels darker than a threshold within 12 mm of a thalamus.
About 1 minute on a 2-core CPU. Needs .data/label_maps (scripts/prepare_training_data.py).
    python3 scripts/csf_target_geometry.py FSAVERAGE_DIR MAPS_DIR [--pred PRED_ASEG] [--maps K]
"""
import argparse
import sys
from pathlib import Path

import nibabel as nib
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "MedSegMamba"))
from medsegmamba.pipeline.patches import within  # noqa: E402
from medsegmamba.train.labelmaps import CISTERN_MM, CSF, THALAMI, VENTRICLE_MM, cistern  # noqa: E402

RADII = ((CISTERN_MM, VENTRICLE_MM), (4.0, 9.0), (5.0, 10.0), (CISTERN_MM, 1000.0))
DARK = (60, 70)  # fsaverage intensities: ventricles 51, aseg CSF 56, thalamus 101, WM 114


def positions(labels, affine, mask):
    """'R a/b/c | A ... | S ...' percentiles of mask's voxels, mm from the thalamic centroid."""
    centre = np.argwhere(np.isin(labels, THALAMI)).mean(0)
    mm = (affine[:3, :3] @ (np.argwhere(mask) - centre).T).T
    return " | ".join("/".join(f"{v:.1f}" for v in np.percentile(mm[:, k], (10, 50, 90))) for k in range(3))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("fsaverage", type=Path)
    ap.add_argument("maps", type=Path)
    ap.add_argument("--pred", type=Path, help="a predicted aseg of fsaverage/orig.mgz")
    ap.add_argument("--maps-count", type=int, default=20, dest="count")
    a = ap.parse_args()
    aseg = nib.load(a.fsaverage / "aseg.mgz")
    ref = np.asarray(aseg.dataobj).astype(np.int64)
    img = np.asarray(nib.load(a.fsaverage / "orig.mgz").dataobj).astype(np.float32)
    csf = ref == CSF
    print("| CSF of | voxels | R (mm) | A (mm) | S (mm) |\n|---|---:|---|---|---|")
    print(f"| fsaverage aseg | {csf.sum()} | {positions(ref, aseg.affine, csf)} |")
    if a.pred:
        pred = np.asarray(nib.load(a.pred).dataobj).astype(np.int64) == CSF
        print(f"| prediction ({a.pred.name}) | {pred.sum()} | {positions(ref, aseg.affine, pred)} |")
        print(f"| aseg CSF the prediction misses | {(csf & ~pred).sum()} | "
              f"{positions(ref, aseg.affine, csf & ~pred)} |")
    for path in sorted(a.maps.glob("*.nii*"))[:a.count]:
        im = nib.load(path)
        lm = np.asarray(im.dataobj).astype(np.int64)
        target = cistern(lm, lm == CSF)
        print(f"| {path.name}, the rule | {target.sum()} | {positions(lm, im.affine, target)} |")
    near = within(np.isin(ref, THALAMI), 12.0)
    print("\n| fluid darker than | cistern mm | ventricle mm | rule voxels | Dice with aseg CSF |\n|---:|---:|---:|---:|---:|")
    for dark in DARK:
        fluid = csf | ((ref == 0) & (img < dark) & near)
        for cm, vm in RADII:
            r = cistern(ref, fluid, cm, vm)
            print(f"| {dark} | {cm:g} | {vm:g} | {r.sum()} | {2 * (r & csf).sum() / (r.sum() + csf.sum()):.3f} |")


if __name__ == "__main__":
    main()
