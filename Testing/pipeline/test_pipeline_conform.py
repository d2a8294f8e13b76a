"""Conform and back: torch resamplers against their scipy twins, and cases whose answer is known."""

import numpy as np
import pytest
import torch

from medsegmamba.io import Volume
from medsegmamba.pipeline import conform as C

from pipeline_support import oblique_affine


def _random_pair(seed):
    """A random source volume and a destination grid (rotated, scaled) that overlaps it."""
    rng = np.random.default_rng(seed)
    shape = tuple(rng.integers(5, 13, 3))
    src_affine = oblique_affine(zooms=rng.uniform(0.7, 2.0, 3), angles=rng.uniform(-3, 3, 3),
                                shift=rng.normal(0, 10, 3))
    dst_shape = tuple(rng.integers(5, 13, 3))
    voxel_map = oblique_affine(zooms=rng.uniform(0.6, 1.4, 3), angles=rng.uniform(-3, 3, 3), shift=(0, 0, 0))
    voxel_map[:3, 3] = np.array(shape) / 2 - voxel_map[:3, :3] @ (np.array(dst_shape) / 2)
    return rng, shape, src_affine, src_affine @ voxel_map, dst_shape


@pytest.mark.parametrize("seed", range(5))
def test_linear_matches_scipy_twin(seed):
    rng, shape, src, dst, dst_shape = _random_pair(seed)
    data = rng.random(shape).astype(np.float32)
    fast = C.resample_linear(torch.from_numpy(data), src, dst, dst_shape).numpy()
    slow = C.resample_linear_ref(data, src, dst, dst_shape)
    error = np.abs(fast - slow)
    print(f"seed {seed}: max error {error.max():.2e}, mean {error.mean():.2e}, non-zero {(slow != 0).mean():.2f}")
    assert (slow != 0).mean() > 0.3  # the grids overlap: the comparison means something
    np.testing.assert_allclose(fast, slow, atol=1e-5)


@pytest.mark.parametrize("seed", range(5))
def test_nearest_matches_scipy_twin(seed):
    rng, shape, src, dst, dst_shape = _random_pair(seed)
    labels = rng.integers(1, 50, shape).astype(np.int32)
    fast = C.resample_nearest(torch.from_numpy(labels), src, dst, dst_shape).numpy()
    slow = C.resample_nearest_ref(labels, src, dst, dst_shape)
    print(f"seed {seed}: {(fast != slow).sum()} of {fast.size} differ")
    assert (slow != 0).mean() > 0.3
    np.testing.assert_array_equal(fast, slow)


def test_twin_comparison_can_fail():
    """Sibling of the twin tests: a slightly different destination grid must be told apart."""
    rng, shape, src, dst, dst_shape = _random_pair(0)
    data = rng.random(shape).astype(np.float32)
    moved = dst.copy()
    moved[:3, 3] += 0.3
    fast = C.resample_linear(torch.from_numpy(data), src, moved, dst_shape).numpy()
    assert np.abs(fast - C.resample_linear_ref(data, src, dst, dst_shape)).max() > 1e-3


def test_hand_checkable_1x1x6():
    """Six voxels 0, 10, ..., 50 along z; a grid of 2 mm voxels offset by half a voxel."""
    data = np.arange(6, dtype=np.float32).reshape(1, 1, 6) * 10
    dst = np.eye(4)
    dst[2, 2], dst[2, 3] = 2.0, 0.5  # destination voxel k sits at z = 2k + 0.5
    linear = C.resample_linear(torch.from_numpy(data), np.eye(4), dst, (1, 1, 3)).numpy().ravel()
    np.testing.assert_allclose(linear, [5, 25, 45], atol=1e-5)
    nearest = C.resample_nearest(torch.from_numpy(data), np.eye(4), dst, (1, 1, 3)).numpy().ravel()
    np.testing.assert_array_equal(nearest, [10, 30, 50])  # z = 0.5 rounds up to voxel 1
    dst[2, 3] = 5.5  # beyond the last voxel: half-blended with the zero outside, then 0
    linear = C.resample_linear(torch.from_numpy(data), np.eye(4), dst, (1, 1, 3)).numpy().ravel()
    np.testing.assert_allclose(linear, [25, 0, 0], atol=1e-5)


def test_permutation_and_flip_round_trip_exactly():
    rng = np.random.default_rng(1)
    data = rng.random((7, 8, 9)).astype(np.float32)
    labels = rng.integers(0, 100, (7, 8, 9)).astype(np.int32)
    src = oblique_affine()
    # destination axes: (-z, x, -y) of the source, an exact voxel permutation with flips
    voxel_map = np.array([[0, 1, 0, 0], [0, 0, -1, 7], [-1, 0, 0, 8], [0, 0, 0, 1]], float)
    dst, dst_shape = src @ voxel_map, (9, 7, 8)
    expected = np.transpose(data, (2, 0, 1))[::-1, :, ::-1]
    moved = C.resample_linear(torch.from_numpy(data), src, dst, dst_shape)
    np.testing.assert_allclose(moved.numpy(), expected, atol=1e-6)
    there = C.resample_nearest(torch.from_numpy(labels), src, dst, dst_shape)
    back = C.resample_nearest(there, dst, src, labels.shape).numpy()
    np.testing.assert_array_equal(back, labels)


def test_conformed_grid_and_native_round_trip():
    """A 1 mm RAS input: conformed is an exact permutation/flip, so labels come back unchanged."""
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 60, (40, 36, 30)).astype(np.int32)
    affine = np.diag([1.0, 1.0, 1.0, 1.0])
    affine[:3, 3] = (-12.0, 30.0, 4.0)
    grid = C.conformed_affine(labels.shape, affine)
    np.testing.assert_allclose(grid[:3, :3], C.LIA)
    np.testing.assert_allclose(grid @ [128, 128, 128, 1], affine @ [20, 18, 15, 1])  # same centre
    conformed = C.resample_nearest(torch.from_numpy(labels), affine, grid, (256,) * 3)
    assert int((conformed != 0).sum()) == labels.size - int((labels == 0).sum())
    back = C.to_native(conformed, grid, labels.shape, affine).numpy()
    np.testing.assert_array_equal(back, labels)


def test_intensity_scale_by_hand():
    data = np.arange(1, 1001, dtype=np.float32)  # one voxel per level 1..1000
    low, scale = C.intensity_scale(data)
    assert low == 1.0
    upper = low + 255 / scale
    assert 996 <= upper <= 1000  # the 0.999 quantile, within a few histogram bins
    scaled = C.scale_intensities(data, low, scale)
    assert scaled[0] == 0 and scaled[-1] == 255 and np.all(scaled == np.round(scaled))


def test_intensity_scale_ignores_zeros():
    rng = np.random.default_rng(3)
    data = rng.gamma(2.0, 50.0, 200_000)
    data[: 100_000] = 0
    low, scale = C.intensity_scale(data)
    quantile = np.quantile(data[data > 0], 0.999)
    bin_width = data.max() / 1000
    assert abs(low + 255 / scale - quantile) <= 3 * bin_width


def test_conform_matches_slow_path():
    rng = np.random.default_rng(4)
    data = np.zeros((30, 24, 20), np.float32)
    data[3:-3, 3:-3, 3:-3] = rng.uniform(5, 300, (24, 18, 14))
    volume = Volume(data, oblique_affine())
    result = C.conform(volume)
    assert tuple(result.image.shape) == (256,) * 3 and not C.is_conform(volume)
    low, scale = C.intensity_scale(data)
    slow = C.scale_intensities(C.resample_linear_ref(data, volume.affine, result.affine, (256,) * 3),
                               low, scale) / 255
    fast = result.image.numpy()
    print("max error", np.abs(fast - slow).max(), "voxels off by one level", (np.abs(fast - slow) > 1e-6).sum())
    assert np.abs(fast - slow).max() <= 1 / 255 + 1e-6  # a value at x.5 may round either way
    assert (np.abs(fast - slow) > 1e-6).mean() < 1e-4
    assert fast.min() == 0.0 and fast.max() > 0.9  # scaled before resampling, as FastSurfer does


def test_already_conformed_input_is_not_resampled():
    rng = np.random.default_rng(5)
    data = rng.integers(0, 256, (256,) * 3).astype(np.float32)
    affine = np.eye(4)
    affine[:3, :3] = C.LIA
    volume = Volume(data, affine)
    assert C.is_conform(volume)
    result = C.conform(volume)
    np.testing.assert_array_equal(result.image.numpy() * 255, data)
    np.testing.assert_array_equal(result.affine, affine)


@pytest.mark.parametrize("seed", range(4))
def test_whole_voxel_fast_path_matches_twin(seed):
    """Signed permutations with whole-voxel shifts (partly outside) take the permute/flip path."""
    rng = np.random.default_rng(seed)
    data = rng.random((6, 7, 8)).astype(np.float32)
    voxel_map = np.eye(4)
    voxel_map[:3, :3] = np.eye(3)[rng.permutation(3)] * rng.choice([-1, 1], 3)
    voxel_map[:3, 3] = rng.integers(-4, 10, 3)
    src = oblique_affine()
    dst, dst_shape = src @ voxel_map, (9, 5, 7)
    assert C._permute_flip(torch.from_numpy(data), C._voxel_map(src, dst), dst_shape) is not None
    fast = C.resample_linear(torch.from_numpy(data), src, dst, dst_shape).numpy()
    np.testing.assert_allclose(fast, C.resample_linear_ref(data, src, dst, dst_shape), atol=1e-6)
    fast = C.resample_nearest(torch.from_numpy(data), src, dst, dst_shape).numpy()
    np.testing.assert_array_equal(fast, C.resample_nearest_ref(data, src, dst, dst_shape))


@pytest.mark.parametrize("seed", range(3))
def test_intensity_scale_torch_matches_numpy(seed):
    rng = np.random.default_rng(seed)
    data = (rng.gamma(2.0, 40.0, (30, 40, 50)) * (rng.random((30, 40, 50)) > 0.4)).astype(np.float32)
    low, scale = C.intensity_scale(data)
    low_t, scale_t = C.intensity_scale(torch.from_numpy(data))
    bin_width = (data.max() - data.min()) / 1000
    assert low == low_t
    assert abs(255 / scale - 255 / scale_t) <= bin_width * 1.001  # histogram edges may differ by one bin
