import numpy as np
import pytest


def blob_map(n=40, seed=0):
    """A tiny head: background, a 500s scalp shell, CSF 24, WM/cortex and a few subcortical
    blobs (left and right), lesion 25 and choroid 136 inside."""
    rng = np.random.default_rng(seed)
    idx = np.indices((n, n, n)).astype(np.float32) - (n - 1) / 2
    r = np.sqrt((idx ** 2).sum(0))
    m = np.zeros((n, n, n), np.int32)
    m[r < 0.48 * n] = 507
    m[r < 0.42 * n] = 24
    m[r < 0.38 * n] = 3
    m[(r < 0.32 * n) & (idx[0] < 0)] = 2
    m[(r < 0.32 * n) & (idx[0] >= 0)] = 41
    for lab, c in ((10, (-4, 0, 0)), (49, (4, 0, 0)), (17, (-6, 5, 3)), (53, (6, 5, 3)),
                   (4, (-3, -5, 0)), (43, (3, -5, 0))):
        d = np.sqrt(sum((idx[a] - c[a]) ** 2 for a in range(3)))
        m[d < 3 + rng.random()] = lab
    m[(np.abs(idx[0] + 8) < 1) & (np.abs(idx[1]) < 1) & (np.abs(idx[2]) < 1)] = 25
    m[(np.abs(idx[0] + 3) < 1) & (np.abs(idx[1] + 5) < 1) & (np.abs(idx[2] - 1) < 1)] = 136
    return m


@pytest.fixture
def maps():
    return [blob_map(40, 0), blob_map(40, 1)]


@pytest.fixture
def make_blob_map():
    return blob_map
