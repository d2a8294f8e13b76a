"""Focused tiling: the coarse pass's box worked out by hand, and the same labels as the full tiling
(its plain twin) wherever the network does not look at context."""

import numpy as np
import pytest
import torch

from medsegmamba.pipeline import patches
from medsegmamba.pipeline.focus import predict_classes
from pipeline_support import IntensityBins


def test_fit_box_grows_to_its_tiling_centred():
    # axis 0: 70..178 widened by 3 -> 67..181 (114) -> padded 128 at step 32 -> 14 more, 7 a side
    # axis 1: 77..184 (107) -> 128, 21 more: 10 before, 11 after
    # axis 2: 57..189 (132) -> 160, 28 more: 14 a side
    assert patches.fit_box((70, 80, 60), (178, 181, 186), 32, (256,) * 3, margin=3) == \
        ((60, 67, 43), (188, 195, 203))


def test_fit_box_shifts_inward_at_the_edge_and_keeps_a_too_long_axis():
    assert patches.fit_box((0, 5, 200), (100, 20, 256), 32, (256,) * 3) == ((0, 0, 160), (128, 96, 256))
    # step 48 pads 256 voxels to 288: the box keeps the whole axis and plan_tiling pads the rest
    assert patches.fit_box((0, 0, 0), (256, 256, 256), 48, (256,) * 3) == ((0, 0, 0), (256, 256, 256))


def scene(shape, blobs, seed=0):
    """A faint shell over the whole volume (non-zero, yet class 0 for the stand-in) and bright blobs
    (classes 1..3) at `blobs`: (corner, size) pairs."""
    rng = np.random.default_rng(seed)
    image = np.zeros(shape, np.float32)
    image[2:-2, 2:-2, 2:-2] = 0.05
    for corner, size in blobs:
        box = tuple(slice(c, c + size) for c in corner)
        image[box] = rng.uniform(0.3, 1.0, (size,) * 3)
    return torch.from_numpy(image)


@pytest.mark.parametrize("shape, step, blobs", [
    ((160, 150, 170), 32, [((60, 50, 70), 30), ((90, 60, 80), 8)]),  # two blobs that touch: one region
    ((120, 120, 112), 16, [((50, 50, 40), 16)]),
])
def test_focused_tiling_matches_full_tiling_with_fewer_patches(shape, step, blobs):
    network = IntensityBins(num_classes=4)
    image = scene(shape, blobs)
    full_counts, focused_counts = {}, {}
    full = predict_classes(network, image, step, 4, "full", counts=full_counts)
    focused = predict_classes(network, image, step, 4, "focused", counts=focused_counts)
    print(f"patches: full {full_counts}, focused {focused_counts}")
    assert full.shape == focused.shape == image.shape
    assert int((full > 0).sum()) == sum(size ** 3 for _, size in blobs)  # the stand-in labels every blob voxel
    assert torch.equal(full, focused)
    assert focused_counts["fine"] < full_counts["fine"]


def test_specks_apart_from_the_largest_region_are_left_out():
    network = IntensityBins(num_classes=4)
    image = scene((160, 160, 160), [((70, 60, 70), 24), ((140, 140, 10), 3)])  # brain-like blob, far speck
    full = predict_classes(network, image, 32, 4, "full")
    counts = {}
    focused = predict_classes(network, image, 32, 4, "focused", counts=counts)
    speck = (slice(140, 143), slice(140, 143), slice(10, 13))
    assert full[speck].all() and not focused[speck].any()
    full[speck] = 0
    assert torch.equal(full, focused)
    assert counts["fine"] == 1  # 24^3 + 3 voxels a side fits one patch


def test_largest_region_by_hand():
    from medsegmamba.pipeline.focus import largest_region

    mask = np.zeros((6, 6, 6), bool)
    mask[0, 0, 0] = mask[1, 1, 1] = True  # diagonal neighbours: one region of 2 under 26-connectivity
    mask[4, 4, 4] = mask[4, 4, 5] = mask[4, 5, 5] = True  # a region of 3
    assert largest_region(mask).sum() == 3 and largest_region(mask)[4, 5, 5]
    # [1, 1, 1] is sqrt(3^2 + 3^2 + 3^2) = 5.2 voxels from [4, 4, 4]: kept with a gap of 6, not of 5
    assert largest_region(mask, gap=6).sum() == 5
    assert largest_region(mask, gap=5).sum() == 3
    assert not largest_region(np.zeros((3, 3, 3), bool)).any()


def test_largest_region_box_by_hand():
    from medsegmamba.pipeline.focus import largest_region_box

    mask = np.zeros((6, 6, 6), bool)
    mask[0, 0, 0] = mask[1, 1, 1] = True  # the region of 2, 5.2 voxels from the region of 3
    mask[4, 4, 4] = mask[4, 4, 5] = mask[4, 5, 5] = True
    assert largest_region_box(mask) == largest_region_box(mask, gap=5) == ((4, 4, 4), (5, 6, 6))
    assert largest_region_box(mask, gap=6) == ((0, 0, 0), (5, 6, 6))
    assert largest_region_box(np.zeros((3, 3, 3), bool), gap=6) is None


def test_largest_region_box_gives_a_tie_to_the_first_region_in_scan_order():
    from medsegmamba.pipeline.focus import largest_region_box

    mask = np.zeros((20, 20, 20), bool)
    mask[12:15, 2:5, 2:5] = True  # two cubes of 27 voxels; this one comes second along the first axis
    mask[2:5, 12:15, 12:15] = True
    assert largest_region_box(mask, gap=4) == ((2, 12, 12), (5, 15, 15))
    assert largest_region_box(mask, gap=17) == ((2, 2, 2), (15, 15, 15))  # 8 + 8 + 8 apart: sqrt(192) = 13.9


def _blobs_and_specks(rng, shape):
    """A random boolean volume: up to five boxes, which may touch or overlap, a copy of the first one
    elsewhere (a tie in size unless it touches another), and specks."""
    mask = rng.random(shape) < rng.choice([0.0, 0.003, 0.02])
    boxes = [(rng.integers(0, shape), rng.integers(1, 12, 3)) for _ in range(rng.integers(0, 6))]
    if boxes and rng.random() < 0.5:
        boxes.append((rng.integers(0, shape), boxes[0][1]))
    for low, size in boxes:
        mask[tuple(slice(a, a + n) for a, n in zip(low, size))] = True
    return mask


@pytest.mark.parametrize("seed", range(60))
def test_largest_region_box_matches_its_plain_twin(seed):
    from medsegmamba.pipeline.focus import largest_region, largest_region_box

    rng = np.random.default_rng(seed)
    shape = tuple(int(n) for n in rng.integers(1, 30 if seed % 2 else 60, 3))
    mask = _blobs_and_specks(rng, shape)
    for gap in (0.0, 0.5, 1.0, 1.5, 2.0, 2.9, 3.0, 4.0, 8.0, 40.0):
        found = largest_region(mask, gap)
        expected = patches.bounding_box(found) if found.any() else None
        assert largest_region_box(mask, gap) == expected, (gap, int(mask.sum()))


@pytest.mark.parametrize("seed", range(20))
def test_pool_any_matches_max_pooling(seed):
    import torch.nn.functional as F

    from medsegmamba.pipeline.focus import pool_any

    rng = np.random.default_rng(seed)
    mask = torch.from_numpy(rng.random(tuple(int(n) for n in rng.integers(1, 12, 3))) < rng.uniform(0, 0.2))
    for pool in (1, 2, 3, 4):
        expected = F.max_pool3d(mask[None, None].float(), pool, ceil_mode=True)[0, 0] > 0
        assert torch.equal(pool_any(mask, pool), expected), (tuple(mask.shape), pool)


def _structures_box_plain(mask, gap, pool):
    """structures_box as it was before its fast path: max pooling in float, the regions as a mask."""
    import torch.nn.functional as F

    from medsegmamba.pipeline.focus import largest_region

    pooled = F.max_pool3d(mask[None, None].float(), pool, ceil_mode=True)[0, 0] > 0
    found = largest_region(pooled.numpy(), gap / pool)
    if not found.any():
        return None
    low, high = patches.bounding_box(found)
    return tuple(a * pool for a in low), tuple(min(b * pool, n) for b, n in zip(high, mask.shape))


@pytest.mark.parametrize("seed", range(12))
def test_structures_box_matches_its_plain_twin(seed):
    from medsegmamba.pipeline.focus import structures_box

    rng = np.random.default_rng(100 + seed)
    mask = torch.from_numpy(_blobs_and_specks(rng, tuple(int(n) for n in rng.integers(2, 70, 3))))
    for gap, pool in ((8.0, 2), (0.0, 2), (3.0, 1), (8.0, 3)):
        assert structures_box(mask, gap, pool) == _structures_box_plain(mask, gap, pool), (gap, pool)


def _box_full_resolution(mask, gap, pool):
    """structures_box's twin: the regions at full resolution, the box rounded outward to `pool`."""
    from medsegmamba.pipeline.focus import largest_region

    found = largest_region(mask.numpy(), gap)
    low, high = patches.bounding_box(found)
    return (tuple(a // pool * pool for a in low),
            tuple(min(-(-b // pool) * pool, n) for b, n in zip(high, mask.shape)))


@pytest.mark.parametrize("seed", range(6))
def test_pooled_box_matches_the_full_resolution_box(seed):
    from medsegmamba.pipeline.focus import structures_box

    rng = np.random.default_rng(seed)
    shape = tuple(int(n) for n in rng.integers(60, 90, 3))
    mask = np.zeros(shape, bool)
    # a big blob; a near piece 2-5 voxels beyond its edge (kept); specks 14+ voxels away (left out)
    lo = rng.integers(15, 25, 3)
    size = rng.integers(12, 20, 3)
    mask[tuple(slice(a, a + n) for a, n in zip(lo, size))] = True
    near = lo.copy()
    near[0] = lo[0] + size[0] + rng.integers(2, 6)
    mask[tuple(slice(a, a + 3) for a in near)] = True
    for _ in range(3):
        far = np.array(shape) - rng.integers(2, 6, 3)
        mask[tuple(slice(a, a + 1) for a in far)] = True
        assert np.abs(far - (lo + size)).max() >= 14
    mask = torch.from_numpy(mask)
    assert structures_box(mask, 8.0) == _box_full_resolution(mask, 8.0, 2)
    assert structures_box(torch.zeros(5, 6, 7, dtype=torch.bool), 8.0) is None


def test_a_piece_cut_off_near_the_largest_region_stays_in_the_box():
    network = IntensityBins(num_classes=4)
    # main blob, and a piece 4 voxels beyond its edge (a coarse patch border can cut a structure so)
    image = scene((160, 160, 160), [((60, 60, 60), 30), ((94, 70, 70), 6)])
    full = predict_classes(network, image, 32, 4, "full")
    focused = predict_classes(network, image, 32, 4, "focused")
    assert focused[94:100, 70:76, 70:76].all()
    assert torch.equal(full, focused)


def test_nothing_found_gives_background_and_no_fine_pass():
    counts = {}
    classes = predict_classes(IntensityBins(num_classes=4), scene((150, 150, 150), []), 32, 2, counts=counts)
    assert not classes.any()
    assert counts == {"coarse": 8}  # the shell, 146^3, pads to 192^3 at step 96: 2 x 2 x 2


def test_unknown_tiling_is_refused():
    with pytest.raises(ValueError, match="tiling: expected one of"):
        predict_classes(IntensityBins(), torch.zeros(8, 8, 8), 32, 1, tiling="sparse")


def _two_blobs(shape=(160, 160, 160)):
    """A small bright blob A (0.9: class 3 for IntensityBins(4), class 1 for IntensityBins(2)) and,
    far from it, a larger dim blob B (0.4: class 1 for IntensityBins(4), background for
    IntensityBins(2))."""
    image = torch.zeros(shape)
    image[2:-2, 2:-2, 2:-2] = 0.05
    image[30:42, 30:42, 30:42] = 0.9
    image[110:140, 110:140, 110:140] = 0.4
    return image


A = (slice(30, 42),) * 3
B = (slice(110, 140),) * 3


def test_a_locator_chooses_the_box_the_network_labels():
    network, locator = IntensityBins(num_classes=4), IntensityBins(num_classes=2)
    image = _two_blobs()
    full = predict_classes(network, image, 32, 4, "full")
    assert (full[A] == 3).all() and (full[B] == 1).all()
    # alone, the network's own coarse pass keeps the largest region, B, and leaves A out
    alone = predict_classes(network, image, 32, 4, "focused")
    assert (alone[B] == 1).all() and not alone[A].any()
    # the locator sees only A: the box is A's, and inside it the labels are the network's
    counts = {}
    located = predict_classes(network, image, 32, 4, "focused", counts=counts, locator=locator)
    assert (located[A] == 3).all() and not located[B].any()
    full[B] = 0
    assert torch.equal(located, full)
    assert counts["fine"] == 1


def test_a_locator_that_finds_nothing_leaves_the_network_the_whole_box():
    network, locator = IntensityBins(num_classes=4), IntensityBins(num_classes=2)
    image = _two_blobs()
    image[A] = 0.4  # now neither blob is bright enough for the locator
    full_counts, counts = {}, {}
    full = predict_classes(network, image, 32, 4, "full", counts=full_counts)
    located = predict_classes(network, image, 32, 4, "focused", counts=counts, locator=locator)
    assert torch.equal(located, full) and located.any()
    assert counts == {"coarse": 8, "fine": full_counts["fine"]}


class CountingBins(IntensityBins):
    """IntensityBins of the 32 aseg classes (so the default left-right swap fits), counting the
    patches it is given."""

    def __init__(self):
        super().__init__()
        self.seen = 0

    def forward(self, x):
        self.seen += x.shape[0]
        return super().forward(x)


@pytest.mark.parametrize("tiling, with_locator", [("focused", True), ("focused", False), ("full", False)])
@pytest.mark.parametrize("tta", [False, True])
def test_tta_mirrors_the_fine_pass_only(tiling, with_locator, tta):
    image = torch.zeros(100, 130, 100)  # one patch a pass: 32 classes of 96^3 are slow here
    image[30:70, 40:80, 30:70] = 0.6
    network, counts = CountingBins(), {}
    locator = CountingBins() if with_locator else None
    predict_classes(network, image, 32, 4, tiling, counts=counts, locator=locator, tta=tta)
    coarse = counts.get("coarse", 0)  # full tiling has no coarse pass
    assert network.seen == (1 + tta) * counts["fine"] + (0 if with_locator else coarse)
    if with_locator:
        assert locator.seen == coarse > 0


# --- the grown coarse pass -------------------------------------------------------------------------

def _tiles_reached_plain(mask, reach, patch):
    """tiles_reached's twin: the Chebyshev distance of every True voxel to every tile's box."""
    import itertools

    grid = tuple(n // patch for n in mask.shape)
    voxels = np.argwhere(mask)
    out = np.zeros(grid, bool)
    for tile in itertools.product(*map(range, grid)):
        low = np.array(tile) * patch
        distance = np.maximum(0, np.maximum(low - voxels, voxels - (low + patch - 1))).max(1, initial=0)
        out[tile] = len(voxels) > 0 and bool((distance <= reach).any())
    return out


def test_tiles_reached_by_hand():
    mask = np.zeros((24, 8, 8), bool)  # three tiles of 8 along axis 0
    mask[10, 0, 0] = True  # tile 1, 2 voxels past its first: tile 0 is 3 away
    assert patches.tiles_reached(mask, 3, 8)[:, 0, 0].tolist() == [True, True, False]
    assert patches.tiles_reached(mask, 2, 8)[:, 0, 0].tolist() == [False, True, False]
    with pytest.raises(ValueError, match="reach: expected 1..3"):
        patches.tiles_reached(mask, 4, 8)


@pytest.mark.parametrize("seed", range(30))
def test_tiles_reached_matches_its_plain_twin(seed):
    rng = np.random.default_rng(seed)
    patch = int(rng.integers(3, 12))
    reach = int(rng.integers(1, (patch + 1) // 2))
    mask = rng.random(tuple(patch * int(g) for g in rng.integers(1, 4, 3))) < rng.choice([0, 0.002, 0.02])
    assert np.array_equal(patches.tiles_reached(mask, reach, patch), _tiles_reached_plain(mask, reach, patch))


def test_tile_reach_is_the_farthest_a_pooled_join_reaches():
    import itertools

    from medsegmamba.pipeline.focus import tile_reach

    for gap, pool in ((8.0, 2), (0.0, 2), (3.0, 1), (0.0, 1), (8.0, 3)):
        # pooled voxels joined: 26-neighbours or within gap / pool; their voxels differ by pool*d + pool-1
        steps = [d for d in itertools.product(range(9), repeat=3)
                 if max(d) <= 1 or np.linalg.norm(d) <= gap / pool]
        assert tile_reach(gap, pool) == max(pool * max(d) + pool - 1 for d in steps), (gap, pool)
    assert tile_reach() == 9


@pytest.mark.parametrize("seed", range(8))
def test_structures_mask_has_the_box_of_structures_box(seed):
    from medsegmamba.pipeline.focus import structures_box, structures_mask

    rng = np.random.default_rng(200 + seed)
    mask = _blobs_and_specks(rng, tuple(int(n) for n in rng.integers(2, 50, 3)))
    kept = structures_mask(mask, 8.0)
    assert not (kept & ~mask).any()
    assert structures_box(torch.from_numpy(kept), 8.0) == structures_box(torch.from_numpy(mask), 8.0)
    # the plain twin: the pooled regions of `largest_region`, read back at full resolution
    from medsegmamba.pipeline.focus import largest_region, pool_any

    plain = largest_region(pool_any(torch.from_numpy(mask), 2).numpy(), 4.0)
    plain = plain.repeat(2, 0).repeat(2, 1).repeat(2, 2)[:mask.shape[0], :mask.shape[1], :mask.shape[2]]
    assert np.array_equal(kept, mask & plain)


class Threshold(torch.nn.Module):
    """Stand-in network of two classes: a voxel over 0.5 is class 1. Cheap enough for many tiles."""

    def forward(self, x):
        on = x > 0.5
        return torch.cat([~on, on], 1).float()


def _grown_plain(full, tiling, reach):
    """The tiles the grown coarse pass visits, round by round, from the full pass's map `full`
    (the crop's labels), with distances voxel by voxel (`_tiles_reached_plain`)."""
    from medsegmamba.pipeline.focus import structures_mask, tile_reach

    grid = tuple(n // 96 for n in tiling.padded)
    start = tuple((o + n // 2) // 96 for o, n in zip(tiling.offset, full.shape))
    visited = np.zeros(grid, bool)
    visited[start] = True
    while True:
        labelled = np.zeros(tiling.padded, bool)
        labelled[tiling.inner] = full
        labelled &= np.kron(visited, np.ones((96,) * 3, bool))
        if not labelled.any():
            return np.ones(grid, bool)
        kept = np.zeros(tiling.padded, bool)
        kept[tiling.inner] = structures_mask(labelled[tiling.inner], 8.0)
        new = (_tiles_reached_plain(labelled, tile_reach(0.0), 96) | _tiles_reached_plain(kept, reach, 96)) & ~visited
        if not new.any():
            return visited
        visited |= new  # in rounds, as the pass does: what it keeps depends on what it has seen


@pytest.mark.parametrize("seed", range(8))
def test_grown_coarse_pass_matches_its_plain_twin(seed):
    from medsegmamba.pipeline.focus import (classes_in_box_tiles, grown_classes_in_box, pool_any,
                                            largest_region, structures_box)

    rng = np.random.default_rng(300 + seed)
    shape = tuple(int(n) for n in rng.integers(193, 288, 3))  # 3 x 3 x 3 tiles, the crop off their grid
    image = np.zeros(shape, np.float32)
    centre = np.array(shape) // 2
    for k in range(int(rng.integers(1, 5))):  # boxes near the centre that cross tile faces, edges, corners
        low = centre + rng.integers(-70, 50, 3)
        image[tuple(slice(max(a, 0), a + int(n)) for a, n in zip(low, rng.integers(5, 40, 3)))] = 0.9
    image[rng.random(shape) < 1e-5] = 0.9  # specks
    full = classes_in_box_tiles(Threshold(), torch.from_numpy(image), (0, 0, 0), shape, 4).numpy() > 0
    counts = {}
    grown = grown_classes_in_box(Threshold(), torch.from_numpy(image), (0, 0, 0), shape, 4, counts=counts)
    tiling = patches.plan_tiling((0, 0, 0), shape, 96)
    visited = _grown_plain(full, tiling, 9)
    on_visited = np.kron(visited, np.ones((96,) * 3, bool))[tiling.inner]
    assert np.array_equal(grown.numpy() > 0, full & on_visited)
    assert counts["coarse"] == visited.sum()
    largest = largest_region(pool_any(torch.from_numpy(full), 2).numpy())
    largest = np.repeat(np.repeat(np.repeat(largest, 2, 0), 2, 1), 2, 2)[tuple(map(slice, shape))] & full
    print(f"seed {seed}: {visited.sum()} tiles; largest region met: {(largest & on_visited).any()}")
    if (largest & on_visited).any():
        assert structures_box(grown > 0, 8.0) == structures_box(torch.from_numpy(full), 8.0)


def _tight_scene(speck_at):
    """Axis 0 of 190 voxels pads to 192: tiles start at crop voxels -1 and 95, so a 2-voxel pooled
    voxel (94, 95) straddles the face. A blob in the centre tile from voxel 103 (pooled 51), and a
    speck at `speck_at` in the other tile: at 94 (pooled 47) the pooled gap of 4 joins it, 9
    voxels from the blob; at 92, 5 pooled voxels away, it is left out."""
    image = torch.full((190, 90, 90), 0.05)
    image[103:140, 30:60, 30:60] = 0.9
    image[speck_at, 44, 44] = 0.9
    return image


@pytest.mark.parametrize("speck_at, kept", [(94, True), (92, False)])
def test_a_speck_at_the_gap_across_a_tile_face(speck_at, kept):
    from medsegmamba.pipeline.focus import grown_classes_in_box, structures_box

    image, network = _tight_scene(speck_at), IntensityBins(num_classes=2)
    full_counts, counts = {}, {}
    full = predict_classes(network, image, 32, 4, "focused", counts=full_counts, grow=False)
    grown = predict_classes(network, image, 32, 4, "focused", counts=counts)
    assert torch.equal(grown, full)
    coarse = grown_classes_in_box(network, image, (0, 0, 0), image.shape, 4)
    # the coarse box starts at the speck's pooled voxel (94) or at the blob's (102)
    assert structures_box(coarse > 0, 8.0) == structures_box(image > 0.5, 8.0)
    assert structures_box(coarse > 0, 8.0)[0][0] == (94 if kept else 102)
    if kept:  # the blob is 9 voxels from the speck's tile: a reach of 8 misses it and the box
        stingy = grown_classes_in_box(network, image, (0, 0, 0), image.shape, 4, reach=8)
        assert not stingy[speck_at].any()
        assert structures_box(stingy > 0, 8.0) != structures_box(full_coarse := (image > 0.5), 8.0)
        assert structures_box(full_coarse, 8.0)[0][0] == 94


def test_a_structure_crossing_faces_edges_and_corners_is_followed():
    image = torch.full((288, 288, 288), 0.05)
    image[120:180, 120:180, 120:180] = 0.9  # the largest region, inside the centre tile (96..191)
    rod = torch.arange(178, 205)
    image[rod, rod, rod] = 0.9  # across the corner at 192 into tile (2, 2, 2): 26-connected there only
    image[200:206, 200:206, 200:206] = 0.9
    image[150, rod, rod] = 0.9  # across an edge into tile (1, 2, 2)
    image[10, 10, 10] = 0.9  # a speck far away, in a tile growth never reaches
    network = IntensityBins(num_classes=2)
    full_counts, counts = {}, {}
    full = predict_classes(network, image, 32, 4, "focused", counts=full_counts, grow=False)
    grown = predict_classes(network, image, 32, 4, "focused", counts=counts)
    print(f"patches: full coarse pass {full_counts}, grown {counts}")
    assert torch.equal(grown, full) and grown[200:206, 200:206, 200:206].all()
    assert full_counts["coarse"] == 27 and counts["coarse"] < 27


def test_a_centre_tile_with_nothing_runs_every_tile():
    image = torch.full((288, 200, 200), 0.05)
    image[10:40, 10:40, 10:40] = 0.9  # in a corner tile, far from the centre one
    network = IntensityBins(num_classes=2)
    full_counts, counts = {}, {}
    full = predict_classes(network, image, 32, 4, "focused", counts=full_counts, grow=False)
    grown = predict_classes(network, image, 32, 4, "focused", counts=counts)
    assert torch.equal(grown, full) and grown[10:40, 10:40, 10:40].all()
    assert counts["coarse"] == full_counts["coarse"] == 27  # 200 voxels pad to 288: 3 x 3 x 3


def test_the_coarse_pass_grows_on_a_cpu_only(monkeypatch):
    """grow=None picks by the coarse network's device: growing on a CPU, every tile elsewhere."""
    from medsegmamba.pipeline import focus

    used = []
    monkeypatch.setattr(focus, "grown_classes_in_box", lambda *a, **k: used.append("grown") or torch.zeros(
        tuple(b - s for s, b in zip(a[2], a[3])), dtype=torch.int64))
    monkeypatch.setattr(focus, "classes_in_box_tiles", lambda *a, **k: used.append("tiles") or torch.zeros(
        tuple(b - s for s, b in zip(a[2], a[3])), dtype=torch.int64))
    image = torch.zeros(20, 20, 20)
    image[5:15, 5:15, 5:15] = 0.5
    network = torch.nn.Conv3d(1, 32, 1)
    focus.predict_classes(network, image, 32, 1, "focused")
    focus.predict_classes(network, image, 32, 1, "focused", grow=False)

    class OnMeta(torch.nn.Module):  # parameters on another device, as a CUDA network's are
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1, device="meta"))

    focus.predict_classes(network, image, 32, 1, "focused", locator=OnMeta())
    assert used == ["grown", "tiles", "tiles"]


def test_a_3mm_locator_finds_the_box_in_one_patch():
    """A locator of 3 mm voxels reads the image mean-pooled by 3: on a 200^3 head (67^3 pooled) it
    runs one patch, and the box it gives, scaled back to 1 mm, holds the blob it sees, rounded
    outward to whole coarse voxels."""
    from medsegmamba.pipeline.focus import located_box

    image = torch.zeros((200, 200, 200))
    image[2:-2, 2:-2, 2:-2] = 0.05
    image[61:92, 100:121, 40:52] = 0.9
    counts = {}
    box = located_box(IntensityBins(num_classes=2), image, 3, 2, counts=counts)
    # a coarse voxel on a face of the blob, bright in 2 of its 3 slices across the face, averages
    # 0.9 * 2/3 + 0.05/3 = 0.62 (class 1); in 1 of 3, 0.33 (background). Axis 0: 60..62 and 90..92
    # have 2 of 3 -> 60..93; axis 1: 99..101 has 2 (100, 101), 120..122 has 1 -> 99..120; axis 2:
    # 39..41 has 2, 51..53 has 1 -> 39..51
    assert box == ((60, 99, 39), (93, 120, 51))
    assert counts == {"coarse": 1}
    # the fine pass then tiles that box widened by 3 + 2 * 3 voxels and grown to its tiling
    network = IntensityBins(num_classes=4)
    counts = {}
    located = predict_classes(network, image, 32, 4, "focused", counts=counts,
                              locator=IntensityBins(num_classes=2), locator_mm=3)
    assert (located[61:92, 100:121, 40:52] == 3).all() and counts == {"coarse": 1, "fine": 1}
    full = predict_classes(network, image, 32, 4, "full")
    assert torch.equal(located, full)  # everything the network labels is in that box here


def test_a_3mm_locator_that_finds_nothing_leaves_the_network_the_whole_box():
    network = IntensityBins(num_classes=4)
    image = _two_blobs()
    image[A] = 0.4
    full = predict_classes(network, image, 32, 4, "full")
    located = predict_classes(network, image, 32, 4, "focused", locator=IntensityBins(num_classes=2), locator_mm=3)
    assert torch.equal(located, full) and located.any()
    with pytest.raises(ValueError, match="needs a locator"):
        predict_classes(network, image, 32, 4, "focused", locator_mm=3)


@pytest.mark.parametrize("locator_mm, coarse_share", [(1, 0.4), (3, 0.1)])
def test_progress_gives_the_coarse_pass_its_share(locator_mm, coarse_share):
    """The bar rises monotonically to 1; the coarse pass fills 40 % of it at 1 mm (8-27 patches), 10 %
    for a 3 mm locator's one patch."""
    image = torch.zeros((200, 200, 200))
    image[2:-2, 2:-2, 2:-2] = 0.05
    image[61:92, 100:121, 40:52] = 0.9
    seen = []
    predict_classes(IntensityBins(num_classes=4), image, 32, 4, "focused", progress=seen.append,
                    locator=IntensityBins(num_classes=2), locator_mm=locator_mm)
    assert seen == sorted(seen) and seen[-1] == pytest.approx(1.0)
    assert max(f for f in seen if f <= coarse_share + 1e-9) == pytest.approx(coarse_share)
