"""What each label value of a SynthSeg-style training map becomes: intensity class, target, mirror.

Decisions (the README, "Where the default model comes from"):
- 25/57 (lesion) are imaged and segmented as cerebral white matter (2/41), like SynthSeg.
- 24 (CSF) in these maps is all the extra-cerebral CSF (~380k voxels), while FreeSurfer's aseg CSF
  is the small cistern of the transverse cerebral fissure: the CMA protocol that aseg descends from
  labels as CSF the fissure's fluid above and behind the third ventricle, beside the thalami
  (fsaverage: 1,792 voxels, 73 % within 3 mm of a thalamus, 86 % within 8 mm of the third
  ventricle). With csf="cistern" (the default) the 24-voxels within CISTERN_MM of a thalamus and
  within VENTRICLE_MM of the third ventricle stay CSF, ~1,100 voxels a map (680-1,420); the rest
  become EXTRA_CSF, imaged exactly like CSF and segmented as background. Until session 11 the rule
  had no third-ventricle term; it kept ~2,000 voxels a map, most of them in the cisterns behind
  and below the pulvinar, which aseg leaves unlabelled. csf="aseg" keeps every 24 as CSF (real
  FreeSurfer asegs, where 24 is already the cistern); csf="background" drops it.
- 30/62 (vessel), 72 (5th ventricle), 85 (optic chiasm) and the 500s are tissue in the image and
  background in the target.
- 136/137 (left) and 163/164 (right) are imaged as their own intensity class and, by default,
  become the choroid plexus 31 (left) / 63 (right): the product has those classes and fsaverage's
  aseg labels them; `choroid="ventricle"` maps them like SynthSeg (4, 5, 43, 44) instead.
"""

from __future__ import annotations

import numpy as np

from ..labels import ASEG
from ..pipeline.patches import within
from ..stats import direct_counts

LESION_TO_WM = {25: 2, 57: 41}
BACKGROUND_TARGET = (30, 62, 72, 85)
CSF, THALAMI, THIRD_VENTRICLE = 24, (10, 49), 14
EXTRA_CSF = 524  # not a value of the maps: 24 split off outside the cistern (see csf="cistern")
CISTERN_MM = 3.0  # from a thalamus
VENTRICLE_MM = 8.0  # from the third ventricle
CSF_RULES = ("cistern", "aseg", "background")
CHOROID_TARGETS = {
    "plexus": {136: 31, 137: 31, 163: 63, 164: 63},
    "ventricle": {136: 4, 137: 5, 163: 43, 164: 44},
}
# Left -> right homologues; flipping swaps them, and a pair shares one intensity class.
LEFT_RIGHT = {
    2: 41, 3: 42, 4: 43, 5: 44, 7: 46, 8: 47, 10: 49, 11: 50, 12: 51, 13: 52, 17: 53, 18: 54,
    25: 57, 26: 58, 28: 60, 30: 62, 31: 63, 136: 163, 137: 164,
}
# Tissue type of each brain label, for T1-like contrasts (anything else: random intensity).
TISSUE = {
    "wm": (2, 41, 7, 46, 85),
    "gm": (3, 42, 8, 47, 17, 53, 18, 54),
    "csf": (4, 43, 5, 44, 14, 15, 24, 72),
    "thalamus": (10, 49),
    "pallidum": (13, 52),
    "striatum": (11, 50, 12, 51, 26, 58),
    "brainstem": (16,),
    "ventraldc": (28, 60),
    "choroid": (136, 137, 163, 164),
    "background": (0,),
}
TISSUE_ORDER = tuple(TISSUE)


def target_of(label: int, choroid: str = "plexus", csf: str = "cistern") -> int:
    """FreeSurfer label a map value is segmented as (0: background)."""
    if choroid not in CHOROID_TARGETS:
        raise ValueError(f"choroid: expected one of {sorted(CHOROID_TARGETS)}, got {choroid!r}")
    if csf not in CSF_RULES:
        raise ValueError(f"csf: expected one of {list(CSF_RULES)}, got {csf!r}")
    label = LESION_TO_WM.get(label, label)
    if label in BACKGROUND_TARGET or 500 <= label < 600 or (label == CSF and csf == "background"):
        return 0
    return CHOROID_TARGETS[choroid].get(label, label)


def present_values(label_map: np.ndarray) -> np.ndarray:
    """The distinct values of an integer map, sorted: np.unique's answer, by counting instead of
    sorting or hashing when every value lies in [0, 2^20) (label maps do), ~10x faster on a 256^3 map."""
    flat = np.asarray(label_map).ravel()
    counts = direct_counts(flat, (1 << 20) - 1)
    return np.unique(flat) if counts is None else np.flatnonzero(counts).astype(flat.dtype)


def cistern(label_map: np.ndarray, fluid: np.ndarray, cistern_mm: float = CISTERN_MM,
            ventricle_mm: float = VENTRICLE_MM) -> np.ndarray:
    """The voxels of `fluid` (bool) within cistern_mm of a thalamus and within ventricle_mm of the
    third ventricle of the map: the CSF target's rule. Voxels are taken as 1 mm (the maps are)."""
    lm = np.asarray(label_map)
    return fluid & within(np.isin(lm, THALAMI), cistern_mm) & within(lm == THIRD_VENTRICLE, ventricle_mm)


def split_csf(label_map: np.ndarray) -> np.ndarray:
    """A copy of the map with every CSF voxel outside the cistern (see `cistern`) made EXTRA_CSF."""
    lm = np.array(label_map, copy=True)
    csf = lm == CSF
    keep = cistern(lm, csf)
    lm[csf] = EXTRA_CSF
    lm[keep] = CSF
    return lm


class LabelTable:
    """Lookup tables over the generation labels (every value the maps hold, 0 first).

    gen index g: labels[g] the value; target[g] the class index (0..31); intensity[g] the
    intensity class; mirror[g] the gen index of the left/right homologue; tissue[g] the
    index in TISSUE_ORDER, or -1 for random-intensity tissue.
    """

    def __init__(self, values, choroid: str = "plexus", csf: str = "cistern"):
        target_of(0, choroid, csf)  # checks both rules
        values = {int(v) for v in values} | {0}
        right_to_left = {r: l for l, r in LEFT_RIGHT.items()}
        pairs = {**LEFT_RIGHT, **right_to_left}
        values |= {pairs[v] for v in values if v in pairs}  # a flip needs both sides
        if csf == "cistern" and CSF in values:
            values.add(EXTRA_CSF)
        values = sorted(v for v in values if v not in LESION_TO_WM)
        self.labels = np.array(values, np.int64)
        self.choroid, self.csf = choroid, csf
        index = {v: g for g, v in enumerate(values)}
        cls = {s.label: i for i, s in enumerate(ASEG)}
        self.target = np.array([cls.get(target_of(v, choroid, csf), 0) for v in values], np.int64)
        # one intensity class per left/right pair, and extra-cerebral CSF shares CSF's: the
        # network must tell the cistern from the rest by where it is, not by how it looks
        canon = right_to_left | {EXTRA_CSF: CSF}
        keys = sorted({canon.get(v, v) for v in values})
        self.intensity = np.array([keys.index(canon.get(v, v)) for v in values], np.int64)
        self.num_intensity = len(keys)
        self.mirror = np.array(
            [index.get(LEFT_RIGHT.get(v, right_to_left.get(v, v)), g) for g, v in enumerate(values)],
            np.int64)
        tissue_of = {v: t for t, vs in enumerate(TISSUE.values()) for v in vs}
        key_values = [keys[c] for c in range(len(keys))]
        self.intensity_tissue = np.array([tissue_of.get(k, -1) for k in key_values], np.int64)

    def encode(self, label_map: np.ndarray) -> np.ndarray:
        """Label map -> uint8 map of gen indices (lesions folded into white matter and, with
        csf="cistern", CSF outside the cistern split off first)."""
        lm = np.asarray(label_map).astype(np.int64)
        if self.csf == "cistern":
            lm = split_csf(lm)
        for src, dst in LESION_TO_WM.items():
            lm[lm == src] = dst
        unknown = np.setdiff1d(present_values(lm), self.labels)
        if unknown.size:
            raise ValueError(f"label map holds values {unknown.tolist()} not in the label table")
        lut = np.zeros(int(self.labels.max()) + 1, np.uint8)
        lut[self.labels] = np.arange(len(self.labels))
        return lut[lm]
