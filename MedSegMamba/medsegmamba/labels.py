"""The label sets: network class index -> FreeSurfer label, name and colour.

Colours are FreeSurfer's standard colour table (FreeSurferColorLUT) values for these labels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Structure:
    label: int
    name: str
    rgb: tuple[int, int, int]


# Class index i of the 32-class aseg model is ASEG[i]; index 0 is background.
ASEG: tuple[Structure, ...] = (
    Structure(0, "Unknown", (0, 0, 0)),
    Structure(4, "Left-Lateral-Ventricle", (120, 18, 134)),
    Structure(5, "Left-Inf-Lat-Vent", (196, 58, 250)),
    Structure(7, "Left-Cerebellum-White-Matter", (220, 248, 164)),
    Structure(8, "Left-Cerebellum-Cortex", (230, 148, 34)),
    Structure(10, "Left-Thalamus", (0, 118, 14)),
    Structure(11, "Left-Caudate", (122, 186, 220)),
    Structure(12, "Left-Putamen", (236, 13, 176)),
    Structure(13, "Left-Pallidum", (12, 48, 255)),
    Structure(14, "3rd-Ventricle", (204, 182, 142)),
    Structure(15, "4th-Ventricle", (42, 204, 164)),
    Structure(16, "Brain-Stem", (119, 159, 176)),
    Structure(17, "Left-Hippocampus", (220, 216, 20)),
    Structure(18, "Left-Amygdala", (103, 255, 255)),
    Structure(24, "CSF", (60, 60, 60)),
    Structure(26, "Left-Accumbens-area", (255, 165, 0)),
    Structure(28, "Left-VentralDC", (165, 42, 42)),
    Structure(31, "Left-choroid-plexus", (0, 200, 200)),
    Structure(43, "Right-Lateral-Ventricle", (120, 18, 134)),
    Structure(44, "Right-Inf-Lat-Vent", (196, 58, 250)),
    Structure(46, "Right-Cerebellum-White-Matter", (220, 248, 164)),
    Structure(47, "Right-Cerebellum-Cortex", (230, 148, 34)),
    Structure(49, "Right-Thalamus", (0, 118, 14)),
    Structure(50, "Right-Caudate", (122, 186, 220)),
    Structure(51, "Right-Putamen", (236, 13, 176)),
    Structure(52, "Right-Pallidum", (13, 48, 255)),
    Structure(53, "Right-Hippocampus", (220, 216, 20)),
    Structure(54, "Right-Amygdala", (103, 255, 255)),
    Structure(58, "Right-Accumbens-area", (255, 165, 0)),
    Structure(60, "Right-VentralDC", (165, 42, 42)),
    Structure(63, "Right-choroid-plexus", (0, 200, 221)),
    Structure(77, "WM-hypointensities", (200, 70, 255)),
)

_SUBFIELDS = (
    (203, "parasubiculum", (255, 255, 0)),
    (204, "presubiculum", (64, 0, 64)),
    (205, "subiculum", (0, 0, 255)),
    (206, "CA1", (255, 0, 0)),
    (208, "CA3", (0, 128, 0)),
    (209, "CA4", (196, 160, 128)),
    (210, "GC-DG", (32, 200, 255)),
    (211, "HATA", (128, 255, 128)),
    (212, "fimbria", (204, 153, 204)),
    (214, "molecular_layer_HP", (128, 0, 0)),
    (215, "hippocampal_fissure", (128, 32, 255)),
    (226, "HP_tail", (170, 170, 255)),
)

# The authors' 25-class subfield coding: left 12xx, right 22xx, for FreeSurfer's 2xx subfields.
HIPPOCAMPAL_SUBFIELDS: tuple[Structure, ...] = (Structure(0, "Unknown", (0, 0, 0)),) + tuple(
    Structure(1000 * side + label, f"{'Left' if side == 1 else 'Right'}-{name}", rgb)
    for side in (1, 2)
    for label, name, rgb in _SUBFIELDS
)

# aseg labels around which the subfield box is placed (Left-, Right-Hippocampus).
HIPPOCAMPUS_LABELS = (17, 53)


def class_to_label(structures: tuple[Structure, ...] = ASEG) -> np.ndarray:
    """Lookup table: class index -> label value (index with a class map to get a label map)."""
    return np.array([s.label for s in structures], dtype=np.int32)


def label_to_class(labels: np.ndarray, structures: tuple[Structure, ...] = ASEG) -> np.ndarray:
    """Map a label map onto class indices; labels not in `structures` become 0 (background)."""
    lut = np.zeros(int(max(labels.max(initial=0), max(s.label for s in structures))) + 1, np.int64)
    for index, s in enumerate(structures):
        lut[s.label] = index
    out = np.zeros(labels.shape, np.int64)
    inside = (labels >= 0) & (labels < lut.size)
    out[inside] = lut[labels[inside].astype(np.int64)]
    return out


def by_label(structures: tuple[Structure, ...] = ASEG) -> dict[int, Structure]:
    return {s.label: s for s in structures}


_OTHER_SIDE = {"Left": "Right", "Right": "Left"}


def left_right_swap(structures: tuple[Structure, ...] = ASEG) -> np.ndarray:
    """Class permutation of a left-right mirror: swap[i] is the class of structure i's homologue.

    Homologues are found by name ('Left-Hippocampus' <-> 'Right-Hippocampus'); a structure whose
    name has no Left-/Right- prefix (background, Brain-Stem, CSF, ...) is its own mirror image. The
    probabilities of a mirrored image, mirrored back, are those of the image after `[:, swap]`.
    """
    index = {s.name: i for i, s in enumerate(structures)}
    swap = np.arange(len(structures))
    for i, s in enumerate(structures):
        side, _, rest = s.name.partition("-")
        if side in _OTHER_SIDE:
            other = f"{_OTHER_SIDE[side]}-{rest}"
            if other not in index:
                raise ValueError(f"left_right_swap: {s.name!r} (label {s.label}) has no {other!r} in the "
                                 "structure table, so a left-right mirror has no class to move it to")
            swap[i] = index[other]
    return swap
