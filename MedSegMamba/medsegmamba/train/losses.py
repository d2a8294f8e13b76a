"""Segmentation losses: soft Dice over classes, and class-weighted cross-entropy."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def soft_dice_loss(logits: torch.Tensor, target: torch.Tensor, eps: float = 1.0) -> torch.Tensor:
    """1 - mean over classes of the soft Dice, summed over the batch and voxels.

    logits (B, C, ...) float; target (B, ...) int64 class indices. A class absent from both the
    target and the prediction scores 1 (eps/eps), so it neither helps nor hurts.
    """
    probs = torch.softmax(logits.float(), dim=1)
    onehot = F.one_hot(target, logits.shape[1]).movedim(-1, 1).to(probs.dtype)
    dims = [0] + list(range(2, logits.dim()))
    inter = (probs * onehot).sum(dims)
    denom = probs.sum(dims) + onehot.sum(dims)
    return 1.0 - ((2 * inter + eps) / (denom + eps)).mean()


def class_weights(counts, power: float = 0.5, clip: float = 10.0) -> torch.Tensor:
    """Inverse-frequency weights (count^-power), mean 1 over the seen classes, clipped."""
    counts = torch.as_tensor(counts, dtype=torch.float64)
    w = torch.where(counts > 0, counts.clamp_min(1) ** -power, torch.zeros_like(counts))
    seen = counts > 0
    w = w / w[seen].mean()
    w = torch.where(seen, w.clamp(1 / clip, clip), torch.ones_like(w))
    return w.float()


def segmentation_loss(logits, target, weights=None, use_ce: bool = True):
    """(total, {"dice": .., "ce": ..}) -- Dice + weighted CE, or Dice alone."""
    dice = soft_dice_loss(logits, target)
    parts = {"dice": dice}
    total = dice
    if use_ce:
        ce = F.cross_entropy(logits.float(), target, weight=weights)
        parts["ce"] = ce
        total = total + ce
    return total, parts
