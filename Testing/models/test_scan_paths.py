import torch

from models_support import golden
from medsegmamba.models import scan_paths as sp


def test_paths_equal_golden():
    want = golden("scan_paths_48.safetensors")["paths"].long()
    assert torch.equal(sp.scan_paths(), want)


def test_perturbed_paths_differ_from_golden():
    want = golden("scan_paths_48.safetensors")["paths"].long()
    got = sp.scan_paths()
    assert not torch.equal(got[[1, 0, 2, 3, 4, 5]], want)  # orientations swapped
    assert not torch.equal(torch.cat([got[:, :4], got[:, :4]], 1), want)  # reversals dropped
    no_snake = torch.stack([torch.stack([sp.orient(sp.rotate(torch.arange(1728).view(12, 12, 12), k), o)
                                         .reshape(-1) for k in range(4)]) for o in range(6)])
    assert not torch.equal(no_snake, want[:, :4])


def test_snake_table_equals_authors_table():
    sd = golden("c_ss3d_state_dict.safetensors")
    assert torch.equal(sp.snake_table().view(1, 1, -1), sd["0.scans.index_flat"])
    assert torch.equal(torch.argsort(sp.snake_table()).view(1, 1, -1), sd["0.scans.index_flat_inv"])


def test_paths_are_distinct_face_adjacent_hamiltonian():
    p = sp.scan_paths(12).view(48, -1)
    assert len({tuple(r.tolist()) for r in p}) == 48
    assert torch.equal(p.sort(dim=1).values, torch.arange(1728).expand(48, -1))
    hwd = torch.stack([p // 144, p // 12 % 12, p % 12], -1)
    assert torch.equal((hwd[:, 1:] - hwd[:, :-1]).abs().sum(-1), torch.ones(48, 1727, dtype=torch.long))
    q = sp.scan_paths(12)
    assert torch.equal(q[:, 4:], q[:, :4].flip(-1))


def test_small_grid_by_hand():
    # 2^3 snake: row 0 forward, row 1 backward; slab 1 reverses rows and inner axis
    assert sp.snake_table(2).tolist() == [0, 1, 3, 2, 6, 7, 5, 4]


def test_rotations_invert():
    x = torch.randn(2, 3, 5, 5, 5)
    for k in range(4):
        for o in range(6):
            assert torch.equal(sp.unrotate(sp.unorient(sp.orient(sp.rotate(x, k), o), o), k), x)
