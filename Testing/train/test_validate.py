"""Validation helpers: the locator's mean pooling and its scoring at 1 mm."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from medsegmamba.train.validate import dice_per_class, evaluate_scan, mean_pool


def test_mean_pool_by_hand():
    image = np.zeros((4, 3, 3), np.float32)
    image[0, 0, 0] = 27.0
    image[3, 2, 2] = 9.0  # alone in the zero-padded second block along axis 0
    pooled = mean_pool(image, 3)
    assert pooled.shape == (2, 1, 1)
    assert pooled[0, 0, 0] == pytest.approx(1.0) and pooled[1, 0, 0] == pytest.approx(9.0 / 27)


@pytest.mark.parametrize("seed", range(5))
def test_mean_pool_matches_the_pipelines_pooling(seed):
    """The pipeline pools with F.pad + F.avg_pool3d (focus.located_box); this is its numpy twin."""
    rng = np.random.default_rng(seed)
    image = rng.random(tuple(int(n) for n in rng.integers(1, 14, 3))).astype(np.float32)
    for voxel in (1, 2, 3):
        x = torch.from_numpy(image)
        pad = [-n % voxel for n in x.shape]
        want = F.avg_pool3d(F.pad(x, (0, pad[2], 0, pad[1], 0, pad[0]))[None, None], voxel)[0, 0]
        assert np.allclose(mean_pool(image, voxel), want.numpy(), atol=1e-6)


class Bright(torch.nn.Module):
    """Stand-in: class 1 where the voxel is over 0.5, else 0 (logits)."""

    def forward_logits(self, x):
        return torch.cat([0.5 - x, x - 0.5], dim=1)


def test_evaluate_scan_scores_a_locator_at_1mm():
    image = np.zeros((30, 30, 30), np.float32)
    image[3:12, 6:15, 9:18] = 1.0  # whole coarse voxels at 3 mm: found exactly
    image[20, 20, 20] = 1.0         # one voxel of 27: its coarse voxel averages 0.04, missed
    ref = (image > 0).astype(np.int64)
    plain = evaluate_scan(Bright(), image, ref, 2, [1], step=8, patch=16)
    located = evaluate_scan(Bright(), image, ref, 2, [1], step=8, patch=16, voxel=3)
    assert plain["dice"][1] == pytest.approx(1.0)
    assert located["dice"][1] == pytest.approx(2 * 729 / (729 + 730))
    assert dice_per_class(np.array([1, 0]), np.array([1, 1]), 2)[1] == pytest.approx(2 / 3)
