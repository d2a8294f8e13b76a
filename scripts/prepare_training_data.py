#!/usr/bin/env python3
"""Copy the training label maps (and optionally fsaverage) into the repo's git-ignored .data/.

Maps are re-saved as uint16 NIfTI (gzip), which is smaller than the int32/float32 originals.
    python3 scripts/prepare_training_data.py /work/shared/data --dest .data
Layout written: DEST/label_maps/*.nii.gz, DEST/fsaverage/{orig,aseg}.nii.gz (with --fsaverage).
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np


def resave_labels(src: Path, dst: Path) -> None:
    img = nib.load(str(src))
    data = np.asarray(img.dataobj)
    labels = np.rint(data).astype(np.int64)
    if labels.min() < 0 or labels.max() > 65535 or not np.array_equal(labels, data):
        raise ValueError(f"{src}: expected integer labels in 0..65535")
    out = nib.Nifti1Image(labels.astype(np.uint16), img.affine)
    out.set_data_dtype(np.uint16)
    nib.save(out, str(dst))


def resave_image(src: Path, dst: Path) -> None:
    img = nib.load(str(src))
    data = np.asarray(img.dataobj)
    out = nib.Nifti1Image(data, img.affine)
    out.set_data_dtype(data.dtype)
    nib.save(out, str(dst))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("source", type=Path, help="folder with synthseg_label_maps/ (and fsaverage/)")
    ap.add_argument("--dest", type=Path, default=Path(__file__).resolve().parents[1] / ".data")
    ap.add_argument("--no-fsaverage", action="store_true", help="skip fsaverage orig/aseg")
    args = ap.parse_args(argv)

    maps_src = args.source / "synthseg_label_maps"
    if not maps_src.is_dir():
        maps_src = args.source
    files = sorted(maps_src.glob("*.nii*"))
    if not files:
        raise SystemExit(f"{maps_src}: no label maps (*.nii, *.nii.gz) found")
    (args.dest / "label_maps").mkdir(parents=True, exist_ok=True)
    for f in files:
        name = f.name.split(".")[0] + ".nii.gz"
        resave_labels(f, args.dest / "label_maps" / name)
    lic = maps_src / "LICENSE.txt"
    if lic.exists():
        shutil.copy(lic, args.dest / "label_maps" / "LICENSE.txt")
    fs = args.source / "fsaverage"
    if not args.no_fsaverage and fs.is_dir():
        (args.dest / "fsaverage").mkdir(parents=True, exist_ok=True)
        resave_image(fs / "orig.mgz", args.dest / "fsaverage" / "orig.nii.gz")
        resave_labels(fs / "aseg.mgz", args.dest / "fsaverage" / "aseg.nii.gz")
        for extra in fs.glob("LICENSE*"):
            shutil.copy(extra, args.dest / "fsaverage" / extra.name)
    total = 0
    for f in sorted(args.dest.rglob("*")):
        if f.is_file():
            total += f.stat().st_size
            print(f"{f.relative_to(args.dest)}  {f.stat().st_size / 2**20:.2f} MiB")
    print(f"total {total / 2**20:.1f} MiB in {args.dest}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
