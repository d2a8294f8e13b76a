"""The 48 traversal paths of SS3D (6 orientations x 8 directions) on the 12^3 bottleneck grid.

Built by the authors' construction (rotations, orientation transposes, 3-D snake, reversals) applied
to the voxel indices themselves, so ``paths[o, k, t]`` is the flat index ``h*S*S + w*S + d`` of the
voxel fed at step t of direction k of an SS3D with orientation o. The same functions, applied to a
feature map, are the authors'-layout scan used by :class:`~medsegmamba.models.ss3d.SS3DAuthorsLayout`.
"""

from __future__ import annotations

from functools import lru_cache

import torch

SIZE = 12
NUM_DIRECTIONS = 8
NUM_ORIENTATIONS = 6


def snake_table(size: int = SIZE) -> torch.Tensor:
    """3-D boustrophedon order of a size^3 grid: ``seq[t] = flat[table[t]]`` (int64, (size**3,))."""
    t = torch.arange(size ** 3, device="cpu").reshape(size, size, size).clone()
    t[:, 1::2, :] = t[:, 1::2, :].flip(-1)  # reverse the inner axis in every odd row
    t[1::2] = t[1::2].flip(-1).flip(-2)  # reverse rows and inner axis in every odd slab
    return t.reshape(-1)


def rotate(x: torch.Tensor, k: int) -> torch.Tensor:
    """Rotation R_k of a (..., H, W, D) tensor (the four copies of the authors' SS3D)."""
    h, w, d = x.dim() - 3, x.dim() - 2, x.dim() - 1
    if k == 0:
        return x
    if k == 1:
        return torch.rot90(torch.rot90(x, 1, (w, d)), 1, (h, d))
    if k == 2:
        return torch.rot90(x, 2, (h, d))
    if k == 3:
        return torch.rot90(torch.rot90(x, -1, (h, d)), 1, (h, w))
    raise ValueError(f"k: expected a rotation index in 0..3, got {k!r}")


def unrotate(x: torch.Tensor, k: int) -> torch.Tensor:
    """Inverse of :func:`rotate` (inverse rot90s in reverse order)."""
    h, w, d = x.dim() - 3, x.dim() - 2, x.dim() - 1
    if k == 0:
        return x
    if k == 1:
        return torch.rot90(torch.rot90(x, -1, (h, d)), -1, (w, d))
    if k == 2:
        return torch.rot90(x, -2, (h, d))
    if k == 3:
        return torch.rot90(torch.rot90(x, -1, (h, w)), 1, (h, d))
    raise ValueError(f"k: expected a rotation index in 0..3, got {k!r}")


def orient(x: torch.Tensor, orientation: int) -> torch.Tensor:
    """Orientation transform T_o of a (..., H, W, D) tensor."""
    h, w, d = x.dim() - 3, x.dim() - 2, x.dim() - 1
    o = orientation % 3
    if o == 1:
        x = x.transpose(h, w)
    elif o == 2:
        x = x.transpose(h, d)
    if orientation % 6 > 2:
        x = x.transpose(w, d)
    return x


def unorient(x: torch.Tensor, orientation: int) -> torch.Tensor:
    """Inverse of :func:`orient` (each swap is its own inverse; undo in reverse order)."""
    h, w, d = x.dim() - 3, x.dim() - 2, x.dim() - 1
    if orientation % 6 > 2:
        x = x.transpose(w, d)
    o = orientation % 3
    if o == 1:
        x = x.transpose(h, w)
    elif o == 2:
        x = x.transpose(h, d)
    return x


def check_orientation(orientation: int) -> int:
    if not isinstance(orientation, int) or not 0 <= orientation < NUM_ORIENTATIONS:
        raise ValueError(f"orientation: expected an int in 0..5, got {orientation!r}")
    return orientation


@lru_cache(maxsize=None)
def _paths(size: int) -> torch.Tensor:
    table = snake_table(size)
    grid = torch.arange(size ** 3, device="cpu").reshape(size, size, size)
    out = torch.empty(NUM_ORIENTATIONS, NUM_DIRECTIONS, size ** 3, dtype=torch.int64, device="cpu")
    for o in range(NUM_ORIENTATIONS):
        for k in range(4):
            seq = orient(rotate(grid, k), o).reshape(-1)[table]
            out[o, k] = seq
            out[o, k + 4] = seq.flip(0)
    return out


def scan_paths(size: int = SIZE) -> torch.Tensor:
    """All paths, int64 (6, 8, size**3). ``paths[o, k+4]`` is ``paths[o, k]`` reversed."""
    return _paths(size).clone()


def inverse_paths(paths: torch.Tensor) -> torch.Tensor:
    """``inv[..., v]`` = the step at which voxel v is visited (argsort along the last axis)."""
    return torch.argsort(paths, dim=-1)
