"""Run the model on every patch and add the probabilities of overlapping patches; argmax.

All on the device: the padded block, the batches and the (classes, X, Y, Z) float32 sum stay there;
only the class map leaves. bf16 autocast on CUDA. On CUDA out-of-memory the batch is halved, and
at batch 1 the work moves to the CPU, with a warning each time (nnU-Net's predictor does the same).
`aggregate_ref` is the slow numpy twin.
"""

from __future__ import annotations

import logging
from typing import Callable

import numpy as np

log = logging.getLogger(__name__)

Progress = Callable[[float], None]


def aggregate(model, block, origins: np.ndarray, batch_size: int = 2, patch: int = 96,
              progress: Progress | None = None, overlap: bool = True):
    """Class map (X, Y, Z) int64 of the padded `block` (X, Y, Z) torch tensor, on the block's device.

    `model` maps (B, 1, p, p, p) to (B, C, p, p, p) probabilities. If CUDA runs out of memory the
    model is moved to the CPU, so the result may come back on the CPU. `overlap=False` promises
    that no two patches share a voxel: each patch's argmax is then written directly, without the
    (C, X, Y, Z) float32 sum (905 MB for a 192^3 block of 32 classes).
    """
    import torch

    while True:
        try:
            return _aggregate(model, block, origins, batch_size, patch, progress, overlap)
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


def _aggregate(model, block, origins, batch_size, patch, progress, overlap=True):
    import torch

    device = block.device
    starts = [tuple(int(v) for v in o) for o in origins]
    total = None
    if not overlap:
        classes = torch.zeros(tuple(block.shape), dtype=torch.int64, device=device)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else _null()
    with torch.inference_mode(), autocast:
        for first in range(0, len(starts), batch_size):
            batch = starts[first:first + batch_size]
            x = torch.stack([block[a:a + patch, b:b + patch, c:c + patch] for a, b, c in batch])
            probabilities = model(x[:, None].float())
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


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def aggregate_ref(predict: Callable[[np.ndarray], np.ndarray], block: np.ndarray, origins: np.ndarray,
                  patch: int = 96) -> np.ndarray:
    """Slow twin: one patch at a time in float64 numpy. `predict`: (p,p,p) -> (C,p,p,p) probabilities."""
    total = None
    for a, b, c in np.asarray(origins):
        probabilities = np.asarray(predict(block[a:a + patch, b:b + patch, c:c + patch]), dtype=np.float64)
        if total is None:
            total = np.zeros((probabilities.shape[0],) + block.shape)
        total[:, a:a + patch, b:b + patch, c:c + patch] += probabilities
    return total.argmax(axis=0)
