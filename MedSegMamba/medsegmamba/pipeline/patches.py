"""Pure tiling: crop the all-zero border, pad each axis to 96 + k*step, place 96^3 patches; the
boxes of masks and what lies near them.

No torch here: boxes, shapes and patch origins are plain integers and numpy arrays, so each piece
can be checked by hand.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

PATCH = 96


@dataclass(frozen=True)
class Tiling:
    """Where the crop came from and how it is padded and cut into patches.

    `start`/`stop`: the crop box in the conformed volume. `offset`: where the crop sits inside the
    padded block of shape `padded`. `origins`: (P, 3) first voxel of each patch in the padded block.
    """

    start: tuple[int, int, int]
    stop: tuple[int, int, int]
    offset: tuple[int, int, int]
    padded: tuple[int, int, int]
    origins: np.ndarray
    patch: int = PATCH

    @property
    def crop(self) -> tuple[slice, slice, slice]:
        return tuple(slice(a, b) for a, b in zip(self.start, self.stop))

    @property
    def inner(self) -> tuple[slice, slice, slice]:
        """The crop's place inside the padded block."""
        return tuple(slice(o, o + b - a) for o, a, b in zip(self.offset, self.start, self.stop))


def box_from_projections(projections) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(start, stop) of the non-zero region from one 1D boolean 'any non-zero' array per axis.

    An all-zero volume gives the whole extent (nothing to crop, nothing to find).
    """
    projections = [np.asarray(p, dtype=bool) for p in projections]
    if not all(p.any() for p in projections):
        return tuple(0 for _ in projections), tuple(p.size for p in projections)
    start = tuple(int(np.argmax(p)) for p in projections)
    stop = tuple(int(p.size - np.argmax(p[::-1])) for p in projections)
    return start, stop


def bounding_box(mask: np.ndarray) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(start, stop) of the non-zero voxels of a numpy array."""
    mask = np.asarray(mask) != 0
    axes = range(mask.ndim)
    return box_from_projections([mask.any(axis=tuple(a for a in axes if a != k)) for k in axes])


def within(mask: np.ndarray, radius: float) -> np.ndarray:
    """Voxels within `radius` voxels (Euclidean) of a non-zero voxel of `mask`, its own included;
    all False for an empty mask.

    Such a voxel lies inside the mask's box widened by `radius`, so the distances are computed
    there only (20x faster than over a head-sized box)."""
    from scipy import ndimage

    mask = np.asarray(mask) != 0
    out = np.zeros(mask.shape, bool)
    if not mask.any():
        return out
    box = widen(tuple(slice(a, b) for a, b in zip(*bounding_box(mask))), int(np.ceil(radius)), mask.shape)
    out[box] = ndimage.distance_transform_edt(~mask[box]) <= radius
    return out


def widen(box, reach: int, shape) -> tuple[slice, ...]:
    """The box (a tuple of slices) widened by `reach` voxels on every side, clipped to `shape`."""
    return tuple(slice(max(0, s.start - reach), min(n, s.stop + reach)) for s, n in zip(box, shape))


def comes_within(regions: np.ndarray, label: int, target: int, radius: float, box, target_box) -> bool:
    """Whether a voxel of `regions == label` lies within `radius` voxels (Euclidean) of a voxel of
    `regions == target`: `within(regions == target, radius)[regions == label].any()`, its twin in
    the tests. `box`, `target_box`: the two regions' boxes as `ndimage.find_objects` gives them.

    Only the voxels of `label` inside the target's box widened by the reach can be that close, and
    the target's voxels that close to them lie within the reach of them, so the distances are
    computed on that part of `box` widened by the reach: a few hundred voxels around a speck, where
    `within` computes them over the whole target's box (20 ms for a brain at 2 mm on a 2-core CPU)."""
    from scipy import ndimage

    reach = int(np.ceil(radius))
    part = tuple(slice(max(s.start, t.start), min(s.stop, t.stop))
                 for s, t in zip(box, widen(target_box, reach, regions.shape)))
    if any(s.start >= s.stop for s in part):
        return False
    around = regions[widen(part, reach, regions.shape)]
    if not (around == target).any():  # the transform of a window without a zero measures to its edge
        return False
    distances = ndimage.distance_transform_edt(around != target)
    return bool((distances[around == label] <= radius).any())


def padded_size(n: int, step: int, patch: int = PATCH) -> int:
    """Smallest 96 + k*step >= n (k >= 0)."""
    return patch + max(0, math.ceil((n - patch) / step)) * step


def patch_origins(shape, step: int, patch: int = PATCH) -> np.ndarray:
    """(P, 3) int origins of patches every `step` voxels; `shape` must be 96 + k*step per axis."""
    ranges = []
    for n in shape:
        if n < patch or (n - patch) % step:
            raise ValueError(f"axis of size {n} is not {patch} + k*{step}")
        ranges.append(np.arange(0, n - patch + 1, step))
    grid = np.meshgrid(*ranges, indexing="ij")
    return np.stack([g.ravel() for g in grid], axis=1).astype(np.int64)


def plan_tiling(start, stop, step: int, patch: int = PATCH) -> Tiling:
    """Tiling of the crop box start:stop, the crop centred in its padded block."""
    if step <= 0 or step > patch:
        raise ValueError(f"step must be in 1..{patch}, got {step}")
    sizes = [b - a for a, b in zip(start, stop)]
    padded = tuple(padded_size(n, step, patch) for n in sizes)
    offset = tuple((p - n) // 2 for p, n in zip(padded, sizes))
    return Tiling(tuple(start), tuple(stop), offset, padded, patch_origins(padded, step, patch), patch)


def fit_box(start, stop, step: int, volume_shape, margin: int = 0, patch: int = PATCH):
    """The box start:stop widened by `margin`, then grown (centred, kept inside the volume where it
    fits) to the size its tiling pads it to anyway, so the patches' reach is all used.

    Returns (start, stop) clipped to `volume_shape`; an axis longer than the volume keeps the whole
    axis and `plan_tiling` pads it.
    """
    new_start, new_stop = [], []
    for a, b, size in zip(start, stop, volume_shape):
        a, b = max(0, a - margin), min(size, b + margin)
        padded = padded_size(b - a, step, patch)
        a -= (padded - (b - a)) // 2
        b = a + padded
        if a < 0:  # shift inward rather than lose reach at the volume's edge
            a, b = 0, b - a
        if b > size:
            a, b = max(0, a - (b - size)), size
        new_start.append(int(a))
        new_stop.append(int(b))
    return tuple(new_start), tuple(new_stop)


def tiles_reached(mask: np.ndarray, reach: int, patch: int = PATCH) -> np.ndarray:
    """Which tiles (the patch^3 blocks of `mask`, whose every axis is a multiple of `patch`) a True
    voxel of `mask` comes within `reach` voxels of in Chebyshev distance (the largest of the
    per-axis distances), its own tile included: a bool array of the tile grid's shape.

    1 <= reach < patch / 2, so only a voxel's own tile and its 26 neighbours can be in reach. Each
    tile is cut along each axis into three bands, its first `reach` voxels, the middle and its last
    `reach`: the neighbour before it along an axis is in reach of the voxels of the first band
    exactly, the one after of the last. So the 3 x 3 x 3 'any' of each tile's bands says which
    neighbours it reaches, read with one `reduceat` per axis rather than distances per voxel."""
    import itertools

    mask = np.asarray(mask) != 0
    if not 1 <= reach < patch / 2:
        raise ValueError(f"reach: expected 1..{(patch - 1) // 2} voxels for tiles of {patch}, got {reach}")
    if any(n == 0 or n % patch for n in mask.shape):
        raise ValueError(f"mask: expected every axis a multiple of {patch}, got shape {mask.shape}")
    grid = tuple(n // patch for n in mask.shape)
    bands = mask
    for axis, n in enumerate(mask.shape):
        cuts = (np.arange(0, n, patch)[:, None] + [0, reach, patch - reach]).ravel()
        bands = np.logical_or.reduceat(bands, cuts, axis=axis)
    bands = bands.reshape(sum(((g, 3) for g in grid), ()))
    bands = bands.transpose(tuple(range(0, 2 * mask.ndim, 2)) + tuple(range(1, 2 * mask.ndim, 2)))
    reached = np.zeros(grid, bool)
    for way in itertools.product((-1, 0, 1), repeat=mask.ndim):
        band = tuple({-1: 0, 0: slice(None), 1: 2}[w] for w in way)
        source = bands[(Ellipsis,) + band]
        source = source.any(axis=tuple(range(mask.ndim, source.ndim))) if source.ndim > mask.ndim else source
        # the tiles `way` from a reaching tile: tile t reaches t + way
        to = tuple(slice(max(w, 0), g + min(w, 0)) for w, g in zip(way, grid))
        came = tuple(slice(max(-w, 0), g + min(-w, 0)) for w, g in zip(way, grid))
        reached[to] |= source[came]
    return reached
