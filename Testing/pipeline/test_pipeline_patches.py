"""Pure tiling: sizes, origins and crop boxes checked by hand."""

import numpy as np
import pytest

from medsegmamba.pipeline import patches


@pytest.mark.parametrize("n, step, expected", [(1, 16, 96), (96, 16, 96), (97, 16, 112), (112, 16, 112),
                                               (113, 32, 128), (200, 32, 224), (200, 16, 208)])
def test_padded_size(n, step, expected):
    assert patches.padded_size(n, step) == expected


def test_origins_by_hand():
    origins = patches.patch_origins((96, 128, 112), step=16)
    assert origins.shape == (1 * 3 * 2, 3)
    assert origins.tolist()[:3] == [[0, 0, 0], [0, 0, 16], [0, 16, 0]]
    assert origins.max(0).tolist() == [0, 32, 16]


def test_origins_refuse_unpadded_shape():
    with pytest.raises(ValueError, match="not 96"):
        patches.patch_origins((100, 96, 96), step=16)


def test_bounding_box_and_empty_volume():
    volume = np.zeros((10, 12, 14))
    volume[2, 3:5, 13] = 1
    assert patches.bounding_box(volume) == ((2, 3, 13), (3, 5, 14))
    assert patches.bounding_box(np.zeros((4, 5, 6))) == ((0, 0, 0), (4, 5, 6))


@pytest.mark.parametrize("step", [16, 32])
def test_tiling_covers_every_voxel_of_the_crop(step):
    tiling = patches.plan_tiling((10, 30, 5), (150, 60, 210), step)
    assert all((p - 96) % step == 0 and p >= n for p, n in zip(tiling.padded, (140, 30, 205)))
    covered = np.zeros(tiling.padded, bool)
    for a, b, c in tiling.origins:
        covered[a:a + 96, b:b + 96, c:c + 96] = True
    assert covered[tiling.inner].all()
    assert [s.stop - s.start for s in tiling.inner] == [140, 30, 205]


def test_within_matches_distances_over_the_whole_volume():
    from scipy import ndimage

    rng = np.random.default_rng(0)
    for radius in (0.5, 1.0, 3.0, 4.2):
        mask = np.zeros((30, 26, 34), bool)
        mask[tuple(rng.integers(5, 20, (3, 6)))] = True
        whole = ndimage.distance_transform_edt(~mask) <= radius
        assert np.array_equal(patches.within(mask, radius), whole), radius
    assert not patches.within(np.zeros((5, 5, 5), bool), 3.0).any()


def test_widen_by_hand():
    box = (slice(2, 5), slice(0, 4), slice(7, 9))
    assert patches.widen(box, 3, (10, 10, 10)) == (slice(0, 8), slice(0, 7), slice(4, 10))
    assert patches.widen(box, 0, (10, 10, 10)) == box


def test_comes_within_by_hand():
    from scipy import ndimage

    regions = np.zeros((12, 3, 3), int)
    regions[0:2, 1, 1] = 1
    regions[6, 1, 1] = 2  # 5 voxels beyond region 1's last voxel
    regions[11, 0, 0] = 3  # sqrt(10^2 + 1 + 1) = 10.1 voxels from region 1's last voxel
    one, two, three = ndimage.find_objects(regions)
    assert patches.comes_within(regions, 2, 1, 5.0, two, one)
    assert not patches.comes_within(regions, 2, 1, 4.9, two, one)
    assert patches.comes_within(regions, 3, 1, 10.1, three, one)
    assert not patches.comes_within(regions, 3, 1, 10.0, three, one)
    assert patches.comes_within(regions, 1, 3, 10.1, one, three)  # the same distance either way


@pytest.mark.parametrize("seed", range(10))
def test_comes_within_matches_within(seed):
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    shape = tuple(int(n) for n in rng.integers(1, 25, 3))
    regions, count = ndimage.label(rng.random(shape) < rng.uniform(0.01, 0.3), structure=np.ones((3, 3, 3)))
    boxes = ndimage.find_objects(regions)
    for radius in (0.0, 1.0, 1.5, 2.0, 3.2, 6.0):
        for target in range(1, min(count, 6) + 1):
            close = patches.within(regions == target, radius)
            for label in range(1, count + 1):
                if label != target:
                    assert patches.comes_within(regions, label, target, radius, boxes[label - 1],
                                                boxes[target - 1]) == close[regions == label].any()
