"""Reading training data from disk: label maps (synthetic mode) and the fsaverage pair."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ..errors import InputError

log = logging.getLogger(__name__)

SUFFIXES = (".nii.gz", ".nii", ".mgz")


def volume_files(folder) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError("not a folder (training data: a folder of label maps, or images + labels)", folder)
    files = sorted(f for f in folder.iterdir() if f.name.endswith(SUFFIXES))
    if not files:
        raise InputError(f"no volumes ({', '.join(SUFFIXES)}) in this folder", folder)
    return files


def load_label_maps(folder, limit: int = 0) -> list[np.ndarray]:
    import nibabel as nib

    files = volume_files(folder)[: limit or None]
    maps = []
    for f in files:
        data = np.asarray(nib.load(str(f)).dataobj)
        if not np.issubdtype(data.dtype, np.integer):
            data = np.rint(data)
        # C order: nibabel gives Fortran-ordered arrays, and every whole-map pass (ravel, unique,
        # lookups) would copy them first
        maps.append(np.ascontiguousarray(data, dtype=np.int32))
    log.info("loaded %d label maps from %s", len(maps), folder)
    return maps


def load_images(folder, limit: int = 0) -> list[np.ndarray]:
    """Conformed images (real-pair mode), in sorted file-name order like the label maps."""
    import nibabel as nib

    return [np.asarray(nib.load(str(f)).dataobj, dtype=np.float32)
            for f in volume_files(folder)[: limit or None]]


def find_pair(folder) -> tuple[Path, Path]:
    """(image, aseg) in a folder: orig.* (or T1.*) and aseg.*."""
    folder = Path(folder)
    pick = lambda stems: next((f for s in stems for f in sorted(folder.glob(s + ".*"))  # noqa: E731
                               if f.name.endswith(SUFFIXES)), None)
    image, aseg = pick(("orig", "T1", "t1")), pick(("aseg",))
    if image is None or aseg is None:
        raise InputError("expected orig.(nii.gz|mgz) and aseg.(nii.gz|mgz) in this folder", folder)
    return image, aseg


def load_eval_pair(folder):
    """(image scaled to [0, 1] by the pipeline's rule, aseg class map) of a conformed pair."""
    import nibabel as nib

    from ..labels import label_to_class
    from .intensity import conform_intensity_numpy

    image_path, aseg_path = find_pair(folder)
    img = nib.load(str(image_path))
    if img.shape != (256, 256, 256) or nib.aff2axcodes(img.affine) != ("L", "I", "A"):
        raise ValueError(f"{image_path}: expected a conformed 256^3 LIA image, got {img.shape} "
                         f"{''.join(nib.aff2axcodes(img.affine))}")
    image = conform_intensity_numpy(np.asarray(img.dataobj, dtype=np.float32))
    ref = label_to_class(np.rint(np.asarray(nib.load(str(aseg_path)).dataobj)).astype(np.int64))
    return image, ref
