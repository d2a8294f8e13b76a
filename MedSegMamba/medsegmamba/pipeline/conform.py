"""Conform like FastSurfer (LIA, 1 mm isotropic, 256^3, uint8 intensities) and go back to native.

The geometry: the conformed grid is centred on the input's centre (the world point of voxel
shape/2, as MGH headers define it), its axes run Left, Inferior, Anterior with 1 mm voxels. The
image is resampled with linear interpolation; labels go back with nearest neighbour. Samples outside
the source are 0, and linear interpolation blends with those zeros across the border (scipy's
'grid-constant' mode, torch's zero padding).

Each resampler runs in torch (`grid_sample` / index gather on the chosen device, slab by slab to
bound memory) and has a slow, plainly right twin on scipy.ndimage.map_coordinates (`*_ref`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from ..io import Volume

log = logging.getLogger(__name__)

SIZE = 256
VOXEL_MM = 1.0
# Columns: the world (RAS) direction of each voxel axis — Left, Inferior, Anterior.
LIA = np.array([[-1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])
_SLAB = 16  # output slices resampled at once: bounds the coordinate grid's memory


@dataclass
class Conformed:
    """The model's view of a scan: `image` (256,256,256) torch float in [0,1] on the device, its affine."""

    image: "torch.Tensor"  # noqa: F821 - torch is imported lazily
    affine: np.ndarray


def conformed_affine(shape, affine: np.ndarray, size: int = SIZE, voxel: float = VOXEL_MM) -> np.ndarray:
    """The 4x4 LIA vox2ras of the conformed grid, centred on the input's centre."""
    centre = affine @ np.append(np.asarray(shape[:3], dtype=float) / 2.0, 1.0)
    out = np.eye(4)
    out[:3, :3] = LIA * voxel
    out[:3, 3] = centre[:3] - out[:3, :3] @ np.full(3, size / 2.0)
    return out


def is_conform(volume: Volume, size: int = SIZE, voxel: float = VOXEL_MM, atol: float = 1e-3) -> bool:
    """True if `volume` already lies on an LIA, `voxel` mm, size^3 grid (no resampling needed)."""
    return volume.data.shape == (size,) * 3 and np.allclose(volume.affine[:3, :3], LIA * voxel, atol=atol)


def intensity_scale(data, upper_quantile: float = 0.999, bins: int = 1000) -> tuple[float, float]:
    """FastSurfer's rule: (src_min, scale) so that src_min -> 0 and the upper bound -> 255.

    Lower bound: the minimum. Upper bound: from a `bins`-bin histogram of all voxels, find the
    first bin edge below which at least (total - (1 - upper_quantile) * non-zero) voxels lie, and
    step two bins down — about the 0.999 quantile of the non-zero voxels. `data`: a numpy array
    (float64 histogram) or a torch tensor (histogram on its device, float32).
    """
    if isinstance(data, np.ndarray):
        data = np.asarray(data, dtype=np.float64)
        low, high = float(data.min()), float(data.max())
        nonzero = int(np.count_nonzero(np.abs(data) >= 1e-15))
        counts, _ = np.histogram(data, bins)
    else:
        import torch

        data = data.float()
        low, high = float(data.min()), float(data.max())
        nonzero = int(torch.count_nonzero(data.abs() >= 1e-15))
        counts = torch.histc(data, bins, min=low, max=high).double().cpu().numpy()
    if low < 0:
        log.warning("input has values below 0 (minimum %g); they map to 0", low)
    cumulative = np.concatenate(([0], np.cumsum(counts)))
    target = data.size - int((1.0 - upper_quantile) * nonzero) if isinstance(data, np.ndarray) \
        else data.numel() - int((1.0 - upper_quantile) * nonzero)
    reached = np.flatnonzero(cumulative >= target)
    index = max(int(reached[0]) - 2, 0) if reached.size else bins
    upper = low + index * (high - low) / bins
    scale = 1.0 if upper == low else 255.0 / (upper - low)
    return low, scale


def scale_intensities(data, src_min: float, scale: float):
    """Map to 0..255, clip and round (numpy array or torch tensor in, same kind out)."""
    scaled = (data - src_min) * scale
    return scaled.clip(0, 255).round()


def conform(volume: Volume, device="cpu") -> Conformed:
    """Resample `volume` onto the conformed grid and scale it to uint8 levels, divided by 255."""
    import torch

    data = torch.from_numpy(volume.data).to(device=device, dtype=torch.float32)
    src_min, scale = intensity_scale(data)  # on the device: no pass over the volume on the host
    affine = volume.affine if is_conform(volume) else conformed_affine(volume.data.shape, volume.affine)
    if is_conform(volume):
        log.info("input already conformed: no resampling")
        image = data
        if volume.data.dtype == np.uint8 or np.array_equal(volume.data, np.clip(np.round(volume.data), 0, 255)):
            src_min, scale = 0.0, 1.0  # already uint8 levels: keep them as they are
    else:
        image = resample_linear(data, volume.affine, affine, (SIZE,) * 3)
    image = scale_intensities(image, src_min, scale) / 255.0
    return Conformed(image, affine)


def _voxel_map(src_affine: np.ndarray, dst_affine: np.ndarray) -> np.ndarray:
    """4x4: destination voxel index -> source voxel coordinate."""
    return np.linalg.inv(src_affine) @ dst_affine


def _axis_terms(matrix: np.ndarray, shape, device):
    """Per-axis parts of `matrix` (4x4, voxel -> coordinates) for separable evaluation.

    Returns three tensors (n_k, 3): row i of term k is i * matrix[:3, k] (plus the translation for
    k = 0), so the coordinates of voxel (i, j, l) are terms[0][i] + terms[1][j] + terms[2][l]:
    three small tables broadcast-added per slab instead of a 4-vector product per voxel.
    """
    import torch

    terms = []
    for k, n in enumerate(shape):
        column = torch.as_tensor(matrix[:3, k], dtype=torch.float64, device=device)
        term = torch.arange(n, dtype=torch.float64, device=device)[:, None] * column
        if k == 0:
            term = term + torch.as_tensor(matrix[:3, 3], dtype=torch.float64, device=device)
        terms.append(term.float())
    return terms


def _slab(terms, start: int, stop: int):
    """Coordinates (stop - start, n1, n2, 3) of destination slices start:stop."""
    return terms[0][start:stop, None, None] + terms[1][None, :, None] + terms[2][None, None, :]


def _permute_flip(data, voxel_map: np.ndarray, dst_shape):
    """Exact resampling when `voxel_map` is a signed axis permutation with a whole-voxel shift.

    The common case of a 1 mm scan stored in another orientation: a permute, flips and a window,
    no per-voxel arithmetic. Returns None when `voxel_map` is not of that kind.
    """
    import torch

    rounded = np.round(voxel_map)
    if not np.allclose(voxel_map, rounded, atol=1e-6):
        return None
    matrix, shift = rounded[:3, :3], rounded[:3, 3].astype(int)
    if not (np.abs(matrix).sum(0) == 1).all() or not (np.abs(matrix).sum(1) == 1).all():
        return None
    order = [int(np.argmax(np.abs(matrix[:, j]))) for j in range(3)]  # source axis of each dst axis
    view = data.permute(order)
    offsets = []
    for j, i in enumerate(order):
        if matrix[i, j] < 0:  # source index t - v: flip, then index (n - 1 - t) + v
            view = view.flip(j)
            offsets.append(data.shape[i] - 1 - shift[i])
        else:
            offsets.append(shift[i])
    out = torch.zeros(tuple(dst_shape), dtype=data.dtype, device=data.device)
    low = [max(0, -o) for o in offsets]
    high = [min(n, view.shape[j] - o) for j, (n, o) in enumerate(zip(dst_shape, offsets))]
    if all(h > l for l, h in zip(low, high)):
        out[tuple(slice(l, h) for l, h in zip(low, high))] = \
            view[tuple(slice(l + o, h + o) for l, h, o in zip(low, high, offsets))]
    return out


def resample_linear(data, src_affine, dst_affine, dst_shape, device=None):
    """Trilinear resampling of `data` (X,Y,Z) torch tensor onto the grid (dst_affine, dst_shape)."""
    import torch
    import torch.nn.functional as F

    device = data.device if device is None else device
    data = data.to(device=device, dtype=torch.float32)
    voxel_map = _voxel_map(src_affine, dst_affine)
    exact = _permute_flip(data, voxel_map, dst_shape)  # samples on voxel centres: linear = copy
    if exact is not None:
        return exact
    padded = F.pad(data, (1, 1, 1, 1, 1, 1))  # a zero border: blends like 'grid-constant', allows size 1
    sizes = np.array(padded.shape, dtype=float)
    # voxel -> padded source coordinate -> grid_sample's [-1, 1] (align_corners=True), axes as (z, y, x)
    normalise = np.diag(np.append(2.0 / (sizes - 1), 1.0))
    normalise[:3, 3] = 2.0 / (sizes - 1) - 1.0  # includes the +1 shift of the border
    terms = _axis_terms((normalise @ voxel_map)[[2, 1, 0, 3]], dst_shape, device)
    out = torch.empty(tuple(dst_shape), dtype=torch.float32, device=device)
    source = padded[None, None]
    for start in range(0, dst_shape[0], _SLAB):
        stop = min(start + _SLAB, dst_shape[0])
        grid = _slab(terms, start, stop)
        out[start:stop] = F.grid_sample(source, grid[None], mode="bilinear", padding_mode="zeros",
                                        align_corners=True)[0, 0]
    return out


def resample_linear_ref(data: np.ndarray, src_affine, dst_affine, dst_shape) -> np.ndarray:
    """Slow twin of `resample_linear`: scipy map_coordinates, order 1, float64."""
    from scipy import ndimage

    points = np.indices(dst_shape, dtype=np.float64).reshape(3, -1)
    coords = _voxel_map(src_affine, dst_affine) @ np.vstack([points, np.ones(points.shape[1])])
    values = ndimage.map_coordinates(np.asarray(data, np.float64), coords[:3], order=1, mode="grid-constant")
    return values.reshape(dst_shape)


def resample_nearest(labels, src_affine, dst_affine, dst_shape, device=None):
    """Nearest-neighbour resampling of `labels` (X,Y,Z) torch tensor; voxel floor(p + 0.5), 0 outside."""
    import torch

    device = labels.device if device is None else device
    labels = labels.to(device)
    exact = _permute_flip(labels, _voxel_map(src_affine, dst_affine), dst_shape)
    if exact is not None:
        return exact
    n0, n1, n2 = labels.shape
    flat = labels.reshape(-1)
    # +0.5 folded into the translation: floor(p + 0.5) is the nearest voxel, ties rounding up
    shifted = _voxel_map(src_affine, dst_affine)
    shifted[:3, 3] += 0.5
    terms = _axis_terms(shifted, dst_shape, device)
    out = torch.zeros(tuple(dst_shape), dtype=labels.dtype, device=device)
    for start in range(0, dst_shape[0], _SLAB):
        stop = min(start + _SLAB, dst_shape[0])
        i, j, k = torch.floor(_slab(terms, start, stop)).long().unbind(-1)
        inside = (i >= 0) & (i < n0) & (j >= 0) & (j < n1) & (k >= 0) & (k < n2)
        index = ((i.clamp(0, n0 - 1) * n1 + j.clamp(0, n1 - 1)) * n2 + k.clamp(0, n2 - 1))
        out[start:stop] = torch.where(inside, flat[index], 0)
    return out


def resample_nearest_ref(labels: np.ndarray, src_affine, dst_affine, dst_shape) -> np.ndarray:
    """Slow twin of `resample_nearest`: scipy map_coordinates, order 0 (rounds half up)."""
    from scipy import ndimage

    points = np.indices(dst_shape, dtype=np.float64).reshape(3, -1)
    coords = _voxel_map(src_affine, dst_affine) @ np.vstack([points, np.ones(points.shape[1])])
    values = ndimage.map_coordinates(np.asarray(labels), coords[:3], order=0, mode="grid-constant", cval=0)
    return values.reshape(dst_shape)


def to_native(labels, conformed_affine_: np.ndarray, native_shape, native_affine: np.ndarray, device=None):
    """Put a conformed label map (torch tensor) back onto the input's own grid (nearest neighbour)."""
    return resample_nearest(labels, conformed_affine_, native_affine, tuple(native_shape[:3]), device)
