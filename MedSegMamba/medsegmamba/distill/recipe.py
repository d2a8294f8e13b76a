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


def make_generator(label_maps, device, patch_size: int = 96, seed: int = 0):
    """The training recipe's :class:`medsegmamba.train.synth.SynthGenerator` over a folder of maps."""
    import numpy as np

    from ..io import read_volume
    from ..train.labelmaps import LabelTable
    from ..train.synth import SynthConfig, SynthGenerator

    maps = [np.asarray(read_volume(p).data).round().astype(np.int32)
            for p in label_map_paths(label_maps)]
    table = LabelTable(np.unique(np.concatenate([np.unique(m) for m in maps])))
    return SynthGenerator(maps, table, SynthConfig(patch=patch_size), device=device, seed=seed)


def synth_batches(generator, batch_size: int = 1, seed: int | None = None):
    """Endless ``(image (B, 1, P, P, P) float, target (B, P, P, P) long)`` from ``generator``;
    ``seed`` restarts its stream, so that every arm of an experiment sees the same batches."""
    if seed is not None:
        generator.gen.manual_seed(seed)
    while True:
        image, target = generator.sample(batch_size)
        yield image, target.long()


def segmentation_loss(weights=None, use_ce: bool = True):
    """``loss(logits, target) -> scalar``: the training recipe's Dice + (weighted) cross-entropy."""
    from ..train import losses

    def loss(logits, target):
        return losses.segmentation_loss(logits, target, weights=weights, use_ce=use_ce)[0]

    return loss


__all__ = ["label_map_paths", "make_generator", "synth_batches", "segmentation_loss"]
