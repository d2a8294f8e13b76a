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

The coarse pass grows from the centre (`grown_classes_in_box`): it runs the tile holding the
centre of the non-zero box, then, round by round, every tile within 3 voxels of a labelled voxel
(to finish the regions it has met) or within 9 of a voxel the box search would keep now (the
pooled gap of 8 reaches 9 voxels along an axis, `tile_reach`), all Chebyshev; the other tiles
are background. It finds the full pass's box whenever the full pass's largest region meets a
visited tile (argued in `grown_classes_in_box`); if the centre tile labels nothing it runs every
tile. It grows where the coarse network runs on a CPU; on a GPU, where a tile costs ~5 ms and a
round more than that, every tile is run (`grow=False`, the all-tiles pass, its twin). Measured (2026-11-24, 2-core CPU, the
default model, ~2 s a tile): fsaverage's orig.mgz 24 of 27 tiles, 89.5 -> 78.8 s wall at step 32,
the same label map; the MNI template (demo) 8 of 8, 39.1-42.8 s against 40.0-42.5 s. Growing 9 voxels from every labelled
voxel reached all 27 tiles of fsaverage: its specks outside the brain chain to every tile.

Test-time augmentation (`tta`, see aggregate.py) doubles the fine pass only: the coarse pass just
finds the box, and its labels are not kept.

Since session 7 the default coarse pass is the shipped `locator` (`located_box`): the same network
trained on synthetic images of 3 mm voxels, which reads the conformed image mean-pooled by 3, so
that one patch holds a whole head; its box is widened by two coarse voxels more than the 1 mm
pass's. On fsaverage's orig.mgz that took the coarse pass from 24 patches (~30 s on a 2-core CPU)
to 1 (~1.5 s) and the whole segmentation from 59 to 22 s, every reference structure inside the box.

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
LOCATED_SHARE = 0.1  # the same for a coarse locator's one patch (of ~13 at step 32)


def predict_classes(network, image, step: int, batch_size: int, tiling: str = "focused",
                    progress: Callable[[float], None] | None = None, counts: dict | None = None,
                    locator=None, tta: bool = False, grow: bool | None = None, locator_mm: int = 1):
    """Class map (int64, image's shape) of the conformed `image` (X, Y, Z), on the device the
    network ended on (the CPU after a CUDA out-of-memory fallback). `counts`, when given, gets the
    number of patches of each pass ("coarse", "fine"). `locator`: the network of the coarse pass
    (default: `network`); `locator_mm` > 1: it learnt from images of that many mm per voxel, and
    reads the image mean-pooled so (`located_box`). `tta`: left-right mirroring test-time
    augmentation in the fine pass. `grow`: the coarse pass grows from the centre
    (`grown_classes_in_box`) or runs every tile (`classes_in_box_tiles`, its plain twin); None: grow
    where the coarse network runs on a CPU."""
    counts = {} if counts is None else counts
    if tiling not in TILINGS:
        raise ValueError(f"tiling: expected one of {TILINGS}, got {tiling!r}")
    report = progress or (lambda fraction: None)
    start, stop = nonzero_box(image)
    if tiling == "full":
        classes = classes_in_box(network, image, start, stop, step, batch_size, report, counts, "fine", tta)
        return _place(classes, start, image.shape)

    share = COARSE_SHARE if locator_mm == 1 else LOCATED_SHARE
    if locator_mm > 1:
        if locator is None:
            raise ValueError(f"locator_mm={locator_mm} needs a locator network")
        found = located_box(locator, image, locator_mm, batch_size, lambda f: report(share * f), counts)
        offset, margin = (0, 0, 0), FOCUS_MARGIN + 2 * locator_mm  # in image voxels; two coarse voxels more
    else:
        if grow is None:
            # a tile costs ~2 s on a CPU and ~5 ms on a GPU, where each extra round of growing (a
            # forward, a copy to the host, a region search) costs more than the tiles it may skip
            grow = next((locator or network).parameters(), image).device.type == "cpu"
        coarse_pass = grown_classes_in_box if grow else classes_in_box_tiles
        coarse = coarse_pass(locator or network, image, start, stop, batch_size,
                             lambda f: report(share * f), counts, "coarse")
        found, offset, margin = structures_box(coarse > 0, REGION_GAP), start, FOCUS_MARGIN
    if found is None and locator is None:
        log.info("coarse pass found no structure: nothing to tile")
        report(1.0)
        return _place(coarse, start, image.shape)
    if found is None:
        log.info("the locator found no structure: the network tiles the whole box")
        box = (start, stop)
    else:
        low, high = found
        box = patches.fit_box([s + a for s, a in zip(offset, low)], [s + b for s, b in zip(offset, high)],
                              step, image.shape, margin)
        log.info("focused tiling: structures in %s..%s of the non-zero box %s..%s", *box, start, stop)
    fine = classes_in_box(network, image, *box, step, batch_size,
                          lambda f: report(share + (1 - share) * f), counts, "fine", tta)
    return _place(fine, box[0], image.shape)


def nonzero_box(image):
    """(start, stop) of the non-zero voxels of the (X, Y, Z) tensor `image`, from its projections
    on the axes (computed where the image is); the whole extent when it is all zero."""
    mask = image > 0
    projections = [mask.flatten(1).any(1), mask.any(2).any(0), mask.any(0).any(0)]
    return patches.box_from_projections([p.cpu().numpy() for p in projections])


def located_box(locator, image, voxel: int, batch_size: int, progress=None, counts: dict | None = None):
    """(low, high) box, in voxels of the conformed `image`, of the structures that a locator
    trained on `voxel` mm voxels finds in `image` mean-pooled by `voxel`; None when it finds none.

    At 3 mm a 96^3 patch spans 288 mm, so one patch holds a whole conformed head (256 mm): the
    coarse pass is one forward instead of 8-27 at 1 mm. The box is the pooled one scaled back, so
    it is rounded outward to whole coarse voxels."""
    import torch.nn.functional as F

    device = next(locator.parameters(), image).device
    pad = [-n % voxel for n in image.shape]
    padded = F.pad(image.to(device), (0, pad[2], 0, pad[1], 0, pad[0]))
    small = F.avg_pool3d(padded[None, None], voxel)[0, 0]
    if not bool((small > 0).any()):
        return None
    start, stop = nonzero_box(small)
    coarse = classes_in_box_tiles(locator, small, start, stop, batch_size, progress, counts, "coarse")
    found = structures_box(coarse > 0, REGION_GAP / voxel, pool=1)
    if found is None:
        return None
    low, high = found
    return (tuple((s + a) * voxel for s, a in zip(start, low)),
            tuple(min((s + b) * voxel, n) for s, b, n in zip(start, high, image.shape)))


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
    found = _kept_regions(mask, gap)
    if found is None:
        return None
    offset, _, kept, boxes = found
    return (tuple(a + min(boxes[k - 1][i].start for k in kept) for i, a in enumerate(offset)),
            tuple(a + max(boxes[k - 1][i].stop for k in kept) for i, a in enumerate(offset)))


def _kept_regions(mask, gap: float):
    """The regions of `largest_region(mask, gap)`, found as `largest_region_box` describes:
    (offset of the box of `mask`, the region labels in that box, the labels kept, every region's
    box as `ndimage.find_objects` gives it), or None when `mask` is empty."""
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
    kept = [largest]
    if gap > 0:
        kept += [label for label, box in enumerate(boxes, 1) if label != largest
                 and patches.comes_within(regions, label, largest, gap, box, boxes[largest - 1])]
    return offset, regions, kept, boxes


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


def structures_mask(mask, gap: float, pool: int = POOL):
    """The voxels of the boolean numpy array `mask` that `structures_box(mask, gap, pool)` takes
    the box of: those in the pooled voxels of the largest region and of the regions it joins."""
    import numpy as np
    import torch

    pooled = pool_any(torch.from_numpy(mask), pool).numpy()
    kept = np.zeros(pooled.shape, bool)
    found = _kept_regions(pooled, gap / pool)
    if found is not None:  # the same regions as `largest_region`, without its distances over a whole box
        offset, regions, labels, _ = found
        kept[tuple(slice(a, a + n) for a, n in zip(offset, regions.shape))] = np.isin(regions, labels)
    for axis in range(mask.ndim):
        kept = np.repeat(kept, pool, axis=axis)
    return mask & kept[tuple(slice(0, n) for n in mask.shape)]


def tile_reach(gap: float = REGION_GAP, pool: int = POOL) -> int:
    """How far (Chebyshev, in voxels) the grown coarse pass looks from a labelled voxel for tiles
    to add, so that it reaches everything `structures_box(mask, gap, pool)` joins: 9 for 8 and 2.

    Two pooled voxels that `structures_box` joins differ by at most max(1, floor(gap / pool)) along
    each axis (26-neighbours, or within `gap / pool` Euclidean), and a pooled voxel spans `pool`
    voxels, so their voxels differ by at most pool * that + pool - 1 along each axis. Euclidean
    would need sqrt(9^2 + 1 + 1) = 9.1 here (a pooled step of (4, 0, 0)), and is no cheaper."""
    return pool * max(1, int(gap // pool)) + pool - 1


def classes_in_box_tiles(network, image, start, stop, batch_size: int, progress=None,
                         counts: dict | None = None, name: str = "coarse"):
    """The coarse pass over every tile: `classes_in_box` at step 96, the plain twin of
    `grown_classes_in_box`."""
    return classes_in_box(network, image, start, stop, patches.PATCH, batch_size, progress, counts, name)


def grown_classes_in_box(network, image, start, stop, batch_size: int, progress=None,
                         counts: dict | None = None, name: str = "coarse", reach: int | None = None):
    """Class map of image[start:stop] from the tiles (non-overlapping 96^3 patches over its padded
    block) that growth from the centre visits; the other tiles are background.

    Growth starts at the tile holding the centre of the box, and each round runs, in batches, every
    tile not yet run that comes within `tile_reach(0)` = 3 voxels (Chebyshev) of a labelled voxel,
    or within `reach` (default `tile_reach()`, 9) of a voxel `structures_box` would keep now
    (`structures_mask`), until a round adds none. If the first tile labels nothing, every tile is
    run (`classes_in_box_tiles`, the plain twin). `counts[name]`: the tiles run. Growing 9 voxels
    from every labelled voxel, as first tried, followed the specks outside the brain to every
    tile of fsaverage's head (27 of 27); this way, 24 (the default model's coarse map).

    Why the box of `structures_box(classes > 0)` is the full pass's whenever the full pass's
    largest region has a voxel in a visited tile: tiles do not overlap, so a visited tile's labels
    are the full pass's. A region of the pooled map is a chain of voxels 3 apart at most along each
    axis, so once growth meets a region it visits all of it: at the end the grown pooled map is
    whole regions of the full one. If the largest is among them it is the largest there too (a
    tie goes the same way: the same first voxels in scan order), and growing `reach` from it and
    what it joins meets every region the full pass joins to it (`tile_reach`), which is then
    visited whole: the same regions, the same box. A largest region growth never meets (nothing
    labelled links it to the centre tile) is the one miss."""
    import numpy as np
    import torch

    reach = tile_reach() if reach is None else reach
    tiling = patches.plan_tiling(start, stop, patches.PATCH)
    grid = tuple(n // patches.PATCH for n in tiling.padded)
    block = torch.zeros(tiling.padded, dtype=torch.float32, device=next(network.parameters(), image).device)
    block[tiling.inner] = image[tiling.crop].to(block.device)
    centre = tuple((o + (b - a) // 2) // patches.PATCH for o, a, b in zip(tiling.offset, start, stop))
    visited = np.zeros(grid, bool)
    front = np.zeros(grid, bool)
    front[centre] = True
    classes = None
    while front.any():
        # after a CUDA out-of-memory fallback the network is on the CPU: follow it
        block = block.to(next(network.parameters(), block).device)
        found = aggregate(network, block, np.argwhere(front) * patches.PATCH, batch_size, overlap=False)
        classes = found if classes is None else classes.to(found.device).add_(found)
        first, visited = not visited.any(), visited | front
        labelled = np.zeros(tiling.padded, bool)
        labelled[tiling.inner] = (classes[tiling.inner] > 0).cpu().numpy()
        if first and not labelled.any():
            log.info("coarse pass: the centre tile labels nothing, so every tile is run")
            front = ~visited
        else:
            kept = np.zeros(tiling.padded, bool)
            kept[tiling.inner] = structures_mask(labelled[tiling.inner], REGION_GAP)
            front = (patches.tiles_reached(labelled, tile_reach(0.0)) | patches.tiles_reached(kept, reach)) & ~visited
        if progress is not None:
            progress(float(visited.mean()))
    if counts is not None:
        counts[name] = int(visited.sum())
    log.info("coarse pass: %d of %d tiles", visited.sum(), visited.size)
    return classes[tiling.inner]


def _place(classes, start, shape):
    """`classes` of the box at `start` put into a background volume of `shape`."""
    import torch

    out = torch.zeros(tuple(shape), dtype=classes.dtype, device=classes.device)
    out[tuple(slice(a, a + n) for a, n in zip(start, classes.shape))] = classes
    return out
