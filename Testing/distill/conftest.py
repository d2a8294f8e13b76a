import pytest
import torch

TINY = (1, 8, 16, 32, 64, 16)
PATCH = 32  # the network needs patch_size % 8 == 0; 32 keeps CPU tests fast


@pytest.fixture
def tiny_pair():
    from medsegmamba.models import MedSegMamba

    torch.manual_seed(0)
    teacher = MedSegMamba(channels=TINY, num_blocks=1, d_state=4, patch_size=PATCH)
    student = MedSegMamba(channels=(1, 8, 16, 32, 64, 8), num_blocks=1, d_state=4, patch_size=PATCH)
    return teacher, student


@pytest.fixture
def batch():
    g = torch.Generator().manual_seed(1)
    image = torch.rand(1, 1, PATCH, PATCH, PATCH, generator=g)
    target = torch.randint(0, 32, (1, PATCH, PATCH, PATCH), generator=g)
    return image, target
