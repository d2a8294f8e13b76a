"""Where to tile: a coarse pass finds the structures, the fine pass tiles only their box.

Every structure we segment lies in a box of about 110 x 100 x 125 mm around the brain stem and the
ventricles, while the non-zero box of a head is up to 200 x 256 x 240 mm: 36-180 patches at step
32, 175-880 at step 16. The coarse pass cuts the non-zero box into non-overlapping 96^3 patches
(8-27) and takes the box of the largest connected region it labels, together with every region
within 8 voxels of it. It widens that box by a few voxels and grows it to the size its tiling
covers anyway. The fine pass then tiles the box at the requested step: 8-18 patches at step 32 on
an adult head. Voxels outside the box are background.

Why the largest region with its near neighbours, and not every labelled voxel:
- On a head with skull and neck, the coarse pass also labels scattered specks outside the brain.
  On fsaverage's orig.mgz it found 279 regions: the largest has 257k voxels, and the rest lie
  7-60 voxels away. The box of every voxel would be the whole head.
- The largest region alone is too small. Cut at the coarse patches' borders, the tops of the
  lateral ventricles and caudate on the MNI template are separate regions 2-4 voxels from the
  largest one; leaving them out cut the lateral ventricles' volumes by nearly half.

The regions are found on the coarse map read at 2 mm (max-pooled by POOL: a 2 mm voxel is on when
any of its eight is): 8 times fewer voxels to label; 0.30 -> 0.085 s on a 180 x 200 x 190 map with
300 specks on a 2-core CPU. That can only round the box outward to even voxels and join regions closer than about two
voxels, which the gap joins anyway; `largest_region` at full resolution is its twin in the tests.
Pooling in bool (`pool_any`) and testing each region for nearness in its own neighbourhood
(`largest_region_box`) took the search on fsaverage's coarse map from 84 to 14 ms, on the MNI
template's from 35 to 6 ms, the same boxes (2026-11-24, 2-core CPU).

The coarse pass may run another, smaller network (`locator`): it only has to tell structures from
background, so the shipped default can find the box in which a large network then works (the paper
network costs ~20 ms per patch on an H100, the default model ~4). If the locator finds nothing, the
network tiles the whole box rather than trust it.

Test-time augmentation (`tta`, see aggregate.py) doubles the fine pass only: the coarse pass just
finds the box, and its labels are not kept.

`tiling="full"` is the plain twin: the whole non-zero box at the requested step, as the paper does.
If the coarse pass misses a structure altogether, the fine pass cannot recover it: the price of the
speed, measured on fsaverage and the MNI template against the full tiling (README).
"""

from __future__ import annotations

import logging
from typing import Callable

from . import patches
from .aggregate import aggregate

log = logging.getLogger(__name__)

TILINGS = ("focused", "full")
FOCUS_MARGIN = 3     # voxels added on every side of the coarse box before it is grown
REGION_GAP = 8.0     # regions this close to the largest one belong to it (see predict_classes)
POOL = 2             # the coarse map is searched for regions at this many voxels per voxel
COARSE_SHARE = 0.4   # share of the progress bar given to the coarse pass (about its share of patches)


def predict_classes(network, image, step: int, batch_size: int, tiling: str = "focused",
                    progress: Callable[[float], None] | None = None, counts: dict | None = None,
                    locator=None, tta: bool = False):
    """Class map (int64, image's shape) of the conformed `image` (X, Y, Z), on the device the
    network ended on (the CPU after a CUDA out-of-memory fallback). `counts`, when given, gets the
    number of patches of each pass ("coarse", "fine"). `locator`: the network of the coarse pass
    (default: `network`). `tta`: left-right mirroring test-time augmentation in the fine pass."""
    counts = {} if counts is None else counts
    if tiling not in TILINGS:
        raise ValueError(f"tiling: expected one of {TILINGS}, got {tiling!r}")
    report = progress or (lambda fraction: None)
    mask = image > 0
    projections = [mask.flatten(1).any(1), mask.any(2).any(0), mask.any(0).any(0)]
    start, stop = patches.box_from_projections([p.cpu().numpy() for p in projections])
    if tiling == "full":
        classes = classes_in_box(network, image, start, stop, step, batch_size, report, counts, "fine", tta)
        return _place(classes, start, image.shape)

    coarse = classes_in_box(locator or network, image, start, stop, patches.PATCH, batch_size,
                            lambda f: report(COARSE_SHARE * f), counts, "coarse")
    found = structures_box(coarse > 0, REGION_GAP)
    if found is None and locator is None:
        log.info("coarse pass found no structure: nothing to tile")
        report(1.0)
        return _place(coarse, start, image.shape)
    if found is None:
        log.info("the locator found no structure: the network tiles the whole box")
        box = (start, stop)
    else:
        low, high = found
        box = patches.fit_box([s + a for s, a in zip(start, low)], [s + b for s, b in zip(start, high)],
                              step, image.shape, FOCUS_MARGIN)
        log.info("focused tiling: structures in %s..%s of the non-zero box %s..%s", *box, start, stop)
    fine = classes_in_box(network, image, *box, step, batch_size,
                          lambda f: report(COARSE_SHARE + (1 - COARSE_SHARE) * f), counts, "fine", tta)
    return _place(fine, box[0], image.shape)


def structures_box(mask, gap: float, pool: int = POOL):
    """(low, high) box of the largest region of the boolean tensor `mask` and of every region
    within `gap` voxels of it, searched on `mask` max-pooled by `pool`; None when `mask` is empty.

    The box is the pooled one scaled back: the full-resolution box rounded outward to multiples
    of `pool` (and clipped to the mask)."""
    found = largest_region_box(pool_any(mask, pool).cpu().numpy(), gap / pool)
    if found is None:
        return None
    low, high = found
    return (tuple(a * pool for a in low),
            tuple(min(b * pool, n) for b, n in zip(high, mask.shape)))


def pool_any(mask, pool: int):
    """The boolean tensor `mask` read at `pool` voxels per voxel: a voxel is on when any of its
    pool^3 is, the last one along an axis covering what is left of it. The same as
    `max_pool3d(mask.float(), pool, ceil_mode=True) > 0`, its twin in the tests, which costs 41 ms
    on fsaverage's coarse map on a 2-core CPU (in float) against 2 ms here (in bool, an axis at a time)."""
    for axis in range(mask.ndim):
        def every(k):  # the k-th voxel of each window along `axis`
            index = [slice(None)] * mask.ndim
            index[axis] = slice(k, None, pool)
            return mask[tuple(index)]
        pooled = every(0).clone()
        for k in range(1, pool):
            part = every(k)  # one shorter than `pooled` where pool does not divide the axis
            pooled.narrow(axis, 0, part.shape[axis]).logical_or_(part)
        mask = pooled
    return mask


def largest_region(mask, gap: float = 0.0):
    """The largest 26-connected region of a boolean array, with every other region that comes
    within `gap` voxels of it (all False when there is none). The plain twin of
    `largest_region_box`."""
    import numpy as np
    from scipy import ndimage

    regions, count = ndimage.label(mask, structure=np.ones((3, 3, 3), bool))
    if count <= 1:
        return mask
    sizes = np.bincount(regions.ravel())
    sizes[0] = 0
    largest = regions == int(sizes.argmax())
    if gap <= 0:
        return largest
    near = np.unique(regions[patches.within(largest, gap)])
    return np.isin(regions, near[near > 0])


def largest_region_box(mask, gap: float = 0.0):
    """(low, high) box of `largest_region(mask, gap)`, None when `mask` is empty.

    The same regions, 4-5x faster on the pooled coarse maps of fsaverage and the MNI template
    (41 -> 11 ms, 25 -> 5 ms on a 2-core CPU): labelled in the box of `mask` only, and each other
    region tested against the largest in its own neighbourhood (`patches.comes_within`) rather
    than by distances over the largest region's whole box, which took over half the time."""
    import numpy as np
    from scipy import ndimage

    # in the box of `mask` the regions are the same, and numbered in the same (scan) order, so a
    # tie in size goes to the same region
    offset, stop = patches.bounding_box(mask)
    regions, count = ndimage.label(mask[tuple(map(slice, offset, stop))], structure=np.ones((3, 3, 3), bool))
    if count == 0:
        return None
    sizes = np.bincount(regions.ravel())
    sizes[0] = 0
    largest = int(sizes.argmax())
    boxes = ndimage.find_objects(regions)
    kept = [boxes[largest - 1]]
    if gap > 0:
        kept += [box for label, box in enumerate(boxes, 1) if label != largest
                 and patches.comes_within(regions, label, largest, gap, box, boxes[largest - 1])]
    return (tuple(a + min(box[k].start for box in kept) for k, a in enumerate(offset)),
            tuple(a + max(box[k].stop for box in kept) for k, a in enumerate(offset)))


def classes_in_box(network, image, start, stop, step: int, batch_size: int, progress=None,
                   counts: dict | None = None, name: str = "patches", tta: bool = False):
    """Class map of image[start:stop] from patches every `step` voxels over its padded block
    (`tta`: with left-right mirroring test-time augmentation, see aggregate.py).

    The block is built where the network's weights are, so a pass that follows a CUDA
    out-of-memory fallback starts on the CPU instead of failing again."""
    import torch

    tiling = patches.plan_tiling(start, stop, step)
    device = next(network.parameters(), image).device
    block = torch.zeros(tiling.padded, dtype=torch.float32, device=device)
    block[tiling.inner] = image[tiling.crop].to(device)
    if counts is not None:
        counts[name] = len(tiling.origins)
    classes = aggregate(network, block, tiling.origins, batch_size, progress=progress,
                        overlap=step < patches.PATCH, tta=tta)
    return classes[tiling.inner]


def _place(classes, start, shape):
    """`classes` of the box at `start` put into a background volume of `shape`."""
    import torch

    out = torch.zeros(tuple(shape), dtype=classes.dtype, device=classes.device)
    out[tuple(slice(a, a + n) for a, n in zip(start, classes.shape))] = classes
    return out
