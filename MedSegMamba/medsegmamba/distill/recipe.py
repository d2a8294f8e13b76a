"""The one place where distillation borrows from :mod:`medsegmamba.train`: the SynthSeg-style
patch generator and the segmentation loss (Dice + weighted CE). Every arm of an experiment, and
``medsegmamba distill``, trains on exactly these, so arms differ only in their KD terms.
"""

from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger(__name__)


def label_map_paths(folder) -> list[Path]:
    folder = Path(folder)
    paths = sorted(p for p in folder.glob("*.nii*") if p.is_file())
    if not paths:
        raise FileNotFoundError(f"{folder}: expected SynthSeg label maps (*.nii.gz), found none")
    return paths


def synth_batches(label_maps, device, batch_size: int = 1, patch_size: int = 96, seed: int = 0):
    """Endless iterator of ``(image (B, 1, P, P, P) float, target (B, P, P, P) long)`` on ``device``,
    from the training engineer's generator (:mod:`medsegmamba.train.synth`)."""
    from ..train import synth

    paths = label_map_paths(label_maps)
    gen = synth.make_generator(paths, device=device, patch_size=patch_size, seed=seed)
    while True:
        image, target = gen.sample(batch_size)
        yield image, target.long()


def segmentation_loss():
    """``loss(logits, target) -> scalar``: the training recipe's Dice + weighted cross-entropy."""
    from ..train import losses

    return losses.segmentation_loss()


__all__ = ["label_map_paths", "synth_batches", "segmentation_loss"]
