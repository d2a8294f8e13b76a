"""Validation: Dice per class on fixed synthetic patches, and on a real scan by sliding windows."""

from __future__ import annotations

import logging

import numpy as np
import torch

log = logging.getLogger(__name__)


def dice_per_class(pred: np.ndarray, ref: np.ndarray, num_classes: int) -> np.ndarray:
    """(num_classes,) Dice of each class; NaN where the class is in neither map."""
    pred, ref = np.asarray(pred).ravel(), np.asarray(ref).ravel()
    both = np.bincount(ref[pred == ref], minlength=num_classes)[:num_classes]
    p = np.bincount(pred, minlength=num_classes)[:num_classes]
    r = np.bincount(ref, minlength=num_classes)[:num_classes]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(p + r > 0, 2.0 * both / (p + r), np.nan)


@torch.no_grad()
def predict_patches(model, images: torch.Tensor, batch: int = 2, autocast: bool = False) -> torch.Tensor:
    out = []
    for i in range(0, images.shape[0], batch):
        with torch.autocast(images.device.type, dtype=torch.bfloat16, enabled=autocast):
            out.append(model.forward_logits(images[i:i + batch]).argmax(1))
    return torch.cat(out)


def _padded(n: int, step: int, patch: int) -> int:
    return patch if n <= patch else patch + int(np.ceil((n - patch) / step)) * step


@torch.no_grad()
def sliding_window(model, image: np.ndarray, num_classes: int, step: int = 32, patch: int = 96,
                   device="cpu", batch: int = 2, autocast: bool = False) -> np.ndarray:
    """Class map of a conformed image already scaled to [0, 1] (the pipeline's steps 2-3):
    crop all-zero slices, pad each axis to patch + k*step, add softmax probabilities of the
    patches, argmax. A local twin of medsegmamba.pipeline so training does not depend on it."""
    nz = np.argwhere(image > 0)
    lo, hi = nz.min(0), nz.max(0) + 1
    crop = image[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]]
    size = [_padded(n, step, patch) for n in crop.shape]
    block = np.zeros(size, np.float32)
    block[:crop.shape[0], :crop.shape[1], :crop.shape[2]] = crop
    x = torch.from_numpy(block).to(device)
    probs = torch.zeros((num_classes, *size), dtype=torch.float32, device=device)
    origins = [(i, j, k) for i in range(0, size[0] - patch + 1, step)
               for j in range(0, size[1] - patch + 1, step) for k in range(0, size[2] - patch + 1, step)]
    for s in range(0, len(origins), batch):
        chunk = origins[s:s + batch]
        xb = torch.stack([x[i:i + patch, j:j + patch, k:k + patch] for i, j, k in chunk])[:, None]
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=autocast):
            p = torch.softmax(model.forward_logits(xb).float(), 1)
        for (i, j, k), pp in zip(chunk, p):
            probs[:, i:i + patch, j:j + patch, k:k + patch] += pp
    cls = probs.argmax(0).cpu().numpy()[:crop.shape[0], :crop.shape[1], :crop.shape[2]]
    out = np.zeros(image.shape, np.int64)
    out[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]] = cls
    return out


def mean_pool(image: np.ndarray, voxel: int) -> np.ndarray:
    """`image` read at `voxel` voxels per voxel: the mean of each voxel^3 block, zero-padded at the
    far ends to a multiple of `voxel` (what the pipeline gives a locator)."""
    pad = [(0, -n % voxel) for n in image.shape]
    x = np.pad(image, pad)
    a, b, c = (n // voxel for n in x.shape)
    return x.reshape(a, voxel, b, voxel, c, voxel).mean(axis=(1, 3, 5), dtype=np.float64).astype(np.float32)


def evaluate_scan(model, image01: np.ndarray, ref_classes: np.ndarray, num_classes: int,
                  classes: list[int], step: int = 32, patch: int = 96, device="cpu",
                  autocast: bool = False, voxel: int = 1) -> dict:
    """{"dice": {class: value}, "mean_dice": mean over `classes` present in the reference}.
    `voxel` > 1 (a locator): the network sees the image mean-pooled by `voxel`, and its classes,
    repeated back to 1 mm, are scored against the 1 mm reference."""
    if voxel > 1:
        small = sliding_window(model, mean_pool(image01, voxel), num_classes, step=step, patch=patch,
                               device=device, autocast=autocast)
        for axis in range(3):
            small = np.repeat(small, voxel, axis=axis)
        pred = small[tuple(slice(0, n) for n in image01.shape)]
    else:
        pred = sliding_window(model, image01, num_classes, step=step, patch=patch, device=device,
                              autocast=autocast)
    d = dice_per_class(pred, ref_classes, num_classes)
    present = [c for c in classes if (ref_classes == c).any()]
    return {"dice": {int(c): float(d[c]) for c in present},
            "mean_dice": float(np.nanmean([d[c] for c in present])) if present else float("nan")}
