"""Shared pieces for the pipeline tests: a cheap stand-in network and tiny volumes on disk."""

import nibabel as nib
import numpy as np
import pytest
import torch


class IntensityBins(torch.nn.Module):
    """Stand-in network: each voxel's class is its intensity bin, so the expected answer is known.

    (B, 1, p, p, p) in [0, 1] -> (B, C, p, p, p) probabilities peaked at class round(x * (C - 1)).
    """

    def __init__(self, num_classes: int = 32, sharpness: float = 40.0):
        super().__init__()
        self.num_classes = num_classes
        self.sharpness = sharpness
        self.register_buffer("centres", torch.arange(num_classes, dtype=torch.float32).view(1, -1, 1, 1, 1))

    def forward(self, x):
        return torch.softmax(-self.sharpness * (x * (self.num_classes - 1) - self.centres) ** 2 / 16, dim=1)


@pytest.fixture
def standin():
    return IntensityBins()


def head_like(shape=(40, 40, 40), seed=0) -> np.ndarray:
    """A blob of random positive intensities inside a zero border."""
    rng = np.random.default_rng(seed)
    data = np.zeros(shape, np.float32)
    inner = tuple(slice(4, n - 4) for n in shape)
    data[inner] = rng.uniform(10, 200, [n - 8 for n in shape]).astype(np.float32)
    return data


def oblique_affine(zooms=(1.2, 0.9, 1.5), angles=(0.3, -0.2, 0.5), shift=(-20.0, 15.0, 5.0)) -> np.ndarray:
    """Rotated, anisotropic, non-LIA voxel-to-world matrix."""
    a, b, c = angles
    rx = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    ry = np.array([[np.cos(b), 0, np.sin(b)], [0, 1, 0], [-np.sin(b), 0, np.cos(b)]])
    rz = np.array([[np.cos(c), -np.sin(c), 0], [np.sin(c), np.cos(c), 0], [0, 0, 1]])
    affine = np.eye(4)
    affine[:3, :3] = rz @ ry @ rx @ np.diag(zooms)
    affine[:3, 3] = shift
    return affine


@pytest.fixture
def write_nifti(tmp_path):
    def write(data, affine=None, name="t1.nii.gz"):
        path = tmp_path / name
        nib.save(nib.Nifti1Image(np.asarray(data), np.eye(4) if affine is None else affine), path)
        return path

    return write
