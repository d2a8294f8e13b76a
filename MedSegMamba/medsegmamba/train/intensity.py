"""The inference pipeline's intensity rule, in torch (batched, on the device) and its numpy twin.

FastSurfer's conform scales intensities so that 0 stays 0 and the upper limit, found from a
1000-bin histogram at the 0.999 quantile of the non-zero voxels, maps to 255; the result is
rounded to uint8 and divided by 255. Training images must go through the same rule as real
images do at inference, or the network sees two different intensity ranges.
"""

from __future__ import annotations

import numpy as np

BINS = 1000
F_HIGH = 0.999


def _upper_index(cs: np.ndarray, voxnum: int, nz: int) -> int:
    nth = voxnum - int((1.0 - F_HIGH) * nz)
    hits = np.nonzero(cs >= nth)[0]
    return int(hits[0]) - 2 if hits.size else 0


def conform_intensity_numpy(data: np.ndarray) -> np.ndarray:
    """(...) float array, values >= 0 -> float32 array in [0, 1] on the 1/255 grid."""
    data = np.asarray(data, dtype=np.float64)
    lo, hi = float(data.min()), float(data.max())
    if hi <= lo:
        return np.zeros(data.shape, np.float32)
    bin_size = (hi - lo) / BINS
    hist, _ = np.histogram(data, BINS, range=(lo, hi))
    cs = np.concatenate(([0], np.cumsum(hist)))
    nz = int((np.abs(data) >= 1e-15).sum())
    upper = _upper_index(cs, data.size, nz) * bin_size + lo
    if upper <= lo:
        upper = hi
    scaled = np.clip((data - lo) * (255.0 / (upper - lo)), 0, 255)
    return (np.rint(scaled) / 255.0).astype(np.float32)


def conform_intensity(x, scale_jitter=None):
    """(B, ...) tensor, values >= 0 -> same shape in [0, 1], per sample, like the numpy twin.

    `scale_jitter` (B,) multiplies each sample's upper limit: a patch's quantile differs from the
    whole head's, which is what the pipeline measures, so training sees a spread around it.
    """
    import torch

    b = x.shape[0]
    flat = x.reshape(b, -1).double()
    lo = flat.min(dim=1).values
    hi = flat.max(dim=1).values
    span = (hi - lo).clamp_min(1e-12)
    bin_size = span / BINS
    idx = ((flat - lo[:, None]) / bin_size[:, None]).floor().long().clamp_(0, BINS - 1)
    hist = torch.zeros(b, BINS, dtype=torch.long, device=x.device)
    hist.scatter_add_(1, idx, torch.ones_like(idx))
    cs = torch.cat([torch.zeros(b, 1, dtype=torch.long, device=x.device), hist.cumsum(1)], 1)
    nz = (flat.abs() >= 1e-15).sum(1)
    nth = flat.shape[1] - ((1.0 - F_HIGH) * nz.double()).long()
    reached = cs >= nth[:, None]
    first = torch.where(reached.any(1), reached.float().argmax(1) - 2, torch.zeros_like(nth))
    upper = first.double() * bin_size + lo
    upper = torch.where(upper <= lo, hi, upper)
    if scale_jitter is not None:
        upper = lo + (upper - lo) * scale_jitter.double()
    scale = 255.0 / (upper - lo).clamp_min(1e-12)
    out = ((flat - lo[:, None]) * scale[:, None]).clamp_(0, 255).round_() / 255.0
    return out.reshape(x.shape).to(torch.float32)
