"""A quality-control picture: three orthogonal slices through the brain with the label overlay.

Works on the conformed grid (LIA, 1 mm), so the pictures look the same whatever the input's
orientation. matplotlib (Agg) is imported only when a picture is drawn.
"""

from __future__ import annotations

import numpy as np

from .labels import ASEG, HIPPOCAMPAL_SUBFIELDS


def orthogonal_slices(image, labels) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Sagittal, coronal, axial slices (numpy, display orientation) of a conformed image and labels.

    `image`, `labels`: (256,256,256) LIA numpy arrays or torch tensors; the slices pass through the
    centre of the labelled voxels (the volume's centre if none). Only the slices leave the device.
    """
    nonzero = (labels != 0).nonzero()
    if isinstance(nonzero, tuple):  # numpy
        centre = [int(np.mean(n)) if n.size else s // 2 for n, s in zip(nonzero, labels.shape)]
    else:  # torch
        centre = ([int(v) for v in nonzero.float().mean(0)] if nonzero.shape[0]
                  else [s // 2 for s in labels.shape])
    i, j, k = centre

    def cut(volume):
        arrays = [volume[i, :, :], volume[:, :, k], volume[:, j, :]]
        arrays = [a.cpu().numpy() if hasattr(a, "cpu") else np.asarray(a) for a in arrays]
        # LIA: rows of a sagittal cut already run superior -> inferior; coronal and axial are turned
        return [arrays[0], arrays[1].T, arrays[2].T[::-1]]

    return cut(image), cut(labels)


def _colour_lut() -> dict[int, tuple[int, int, int]]:
    return {s.label: s.rgb for s in ASEG + HIPPOCAMPAL_SUBFIELDS if s.label != 0}


def overlay(image: np.ndarray, labels: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """RGB float image: grey `image` with label colours blended in."""
    grey = np.asarray(image, dtype=np.float64)
    span = grey.max() - grey.min()
    grey = (grey - grey.min()) / span if span > 0 else np.zeros_like(grey)
    rgb = np.repeat(grey[..., None], 3, axis=-1)
    for label, colour in _colour_lut().items():
        mask = labels == label
        if mask.any():
            rgb[mask] = (1 - alpha) * rgb[mask] + alpha * np.asarray(colour) / 255.0
    return rgb


def save_qc_png(image_slices: list[np.ndarray], label_slices: list[np.ndarray], path, title: str = "") -> None:
    """Draw the three overlays side by side into a PNG at `path` (not atomic; see io.atomic_outputs)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    figure = Figure(figsize=(12, 4.4), dpi=100, facecolor="black")
    for index, (image, labels, name) in enumerate(zip(image_slices, label_slices,
                                                      ("sagittal", "coronal", "axial"))):
        axes = figure.add_subplot(1, 3, index + 1)
        axes.imshow(overlay(image, labels), interpolation="nearest")
        axes.set_title(name, color="white")
        axes.axis("off")
    if title:
        figure.suptitle(title, color="white")
    figure.tight_layout()
    figure.savefig(path, format="png", facecolor="black")
