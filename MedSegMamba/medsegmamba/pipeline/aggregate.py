"""Run the model on every patch and add the probabilities of overlapping patches; argmax.

All on the device: the padded block, the batches and the (classes, X, Y, Z) float32 sum stay there;
only the class map leaves. bf16 autocast on CUDA. On CUDA out-of-memory the batch is halved, and
at batch 1 the work moves to the CPU, with a warning each time (nnU-Net's predictor does the same).
`aggregate_ref` is the slow numpy twin.

Test-time augmentation (`tta`): axis 0 of a conformed (LIA) block is left-right, and training
flips patches on it with a left/right label swap, so a mirrored patch is in-distribution. Each
batch is also run mirrored; its probabilities, mirrored back and with Left-X and Right-X swapped,
are averaged with the plain ones (nnU-Net mirrors by default). Twice the network time.
"""

from __future__ import annotations

import logging
from typing import Callable

import numpy as np

from ..labels import left_right_swap

log = logging.getLogger(__name__)

Progress = Callable[[float], None]


def aggregate(model, block, origins: np.ndarray, batch_size: int = 2, patch: int = 96,
              progress: Progress | None = None, overlap: bool = True, tta: bool = False, swap=None):
    """Class map (X, Y, Z) int64 of the padded `block` (X, Y, Z) torch tensor, on the block's device.

    `model` maps (B, 1, p, p, p) to (B, C, p, p, p) probabilities. If CUDA runs out of memory the
    model is moved to the CPU, so the result may come back on the CPU. `overlap=False` promises
    that no two patches share a voxel: each patch's argmax is then written directly, without the
    (C, X, Y, Z) float32 sum (905 MB for a 192^3 block of 32 classes). `tta`: average each batch's
    probabilities with those of its left-right mirror; `swap` is the class permutation of the
    mirror (default: `labels.left_right_swap()`, the 32 aseg classes).
    """
    import torch

    swap = _mirror_swap(tta, swap)
    while True:
        try:
            return _aggregate(model, block, origins, batch_size, patch, progress, overlap, swap)
        except torch.OutOfMemoryError:
            if not _on_cuda(block):
                raise
            torch.cuda.empty_cache()
            if batch_size > 1:
                batch_size //= 2
                log.warning("CUDA out of memory: retrying with batch size %d", batch_size)
            else:
                log.warning("CUDA out of memory at batch size 1: falling back to the CPU (slow)")
                model.to("cpu")
                block = block.to("cpu")


def _on_cuda(tensor) -> bool:
    return tensor.device.type == "cuda"


def _mirror_swap(tta: bool, swap):
    """The class permutation of the mirrored pass, or None without test-time augmentation."""
    if not tta:
        return None
    return np.asarray(left_right_swap() if swap is None else swap, dtype=np.int64)


def _aggregate(model, block, origins, batch_size, patch, progress, overlap=True, swap=None):
    import torch

    device = block.device
    starts = [tuple(int(v) for v in o) for o in origins]
    total = None
    if not overlap:
        classes = torch.zeros(tuple(block.shape), dtype=torch.int64, device=device)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else _null()
    swap = None if swap is None else torch.as_tensor(swap, device=device)
    with torch.inference_mode(), autocast:
        for first in range(0, len(starts), batch_size):
            batch = starts[first:first + batch_size]
            x = torch.stack([block[a:a + patch, b:b + patch, c:c + patch] for a, b, c in batch])
            probabilities = _predict(model, x[:, None].float(), swap)
            if overlap:
                if total is None:
                    total = torch.zeros((probabilities.shape[1],) + tuple(block.shape), dtype=torch.float32,
                                        device=device)
                for (a, b, c), p in zip(batch, probabilities):
                    total[:, a:a + patch, b:b + patch, c:c + patch] += p.float()
            else:
                for (a, b, c), p in zip(batch, probabilities):
                    classes[a:a + patch, b:b + patch, c:c + patch] = p.argmax(dim=0)
            if progress is not None:
                progress(min(first + batch_size, len(starts)) / len(starts))
        return total.argmax(dim=0) if overlap else classes


def _predict(model, x, swap):
    """(B, C, p, p, p) probabilities of the (B, 1, p, p, p) patches `x`; with `swap`, the mean of
    the plain pass and the left-right mirrored one (dim 2 is axis 0 of the block)."""
    probabilities = model(x)
    if swap is None:
        return probabilities
    if probabilities.shape[1] != len(swap):
        raise ValueError(f"tta: the network gives {probabilities.shape[1]} classes, but the left-right "
                         f"swap has {len(swap)}")
    mirrored = model(x.flip(2)).flip(2)[:, swap]
    return (probabilities.float() + mirrored.float()) / 2


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def aggregate_ref(predict: Callable[[np.ndarray], np.ndarray], block: np.ndarray, origins: np.ndarray,
                  patch: int = 96, tta: bool = False, swap=None) -> np.ndarray:
    """Slow twin: one patch at a time in float64 numpy. `predict`: (p,p,p) -> (C,p,p,p) probabilities.
    `tta`, `swap`: as in `aggregate`, the mirror made by reversing the patch's first axis."""
    swap = _mirror_swap(tta, swap)
    total = None
    for a, b, c in np.asarray(origins):
        x = block[a:a + patch, b:b + patch, c:c + patch]
        probabilities = np.asarray(predict(x), dtype=np.float64)
        if swap is not None:
            mirrored = np.asarray(predict(x[::-1]), dtype=np.float64)[:, ::-1]
            probabilities = (probabilities + mirrored[swap]) / 2
        if total is None:
            total = np.zeros((probabilities.shape[0],) + block.shape)
        total[:, a:a + patch, b:b + patch, c:c + patch] += probabilities
    return total.argmax(axis=0)
