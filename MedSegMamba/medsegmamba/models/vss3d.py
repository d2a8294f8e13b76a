"""VSS3D block and the stack of blocks that forms MedSegMamba's bottleneck (channels-last)."""

from __future__ import annotations

import torch
from torch import nn

from .layers import DropPath, Mlp
from .scan_paths import NUM_ORIENTATIONS, SIZE
from .ss3d import SS3D


class VSS3DBlock(nn.Module):
    """``x + DropPath(SS3D(LN(x)))`` then ``x + DropPath(MLP(LN(x)))``; x is (B, S, S, S, C)."""

    def __init__(self, dim: int, d_state: int, orientation: int, expand: int = 1,
                 dropout: float = 0.0, drop_path: float = 0.0, size: int = SIZE,
                 scan_impl: str | None = None, ss3d_cls: type = SS3D):
        super().__init__()
        self.ln_1 = nn.LayerNorm(dim, eps=1e-5)
        self.self_attention = ss3d_cls(dim, d_state, expand=expand, orientation=orientation,
                                       dropout=dropout, size=size, scan_impl=scan_impl)
        self.ln_2 = nn.LayerNorm(dim, eps=1e-5)
        self.mlp = Mlp(dim, expand * dim, dropout=dropout)
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop_path(self.self_attention(self.ln_1(x)))
        return x + self.drop_path(self.mlp(self.ln_2(x)))


class VSS3DBottleneck(nn.Module):
    """``num_blocks`` VSS3D blocks, block i with orientation i % 6 (keys ``blocks.{i}``)."""

    def __init__(self, dim: int, num_blocks: int, d_state: int, expand: int = 1,
                 dropout: float = 0.0, drop_path: float = 0.0, size: int = SIZE,
                 scan_impl: str | None = None, ss3d_cls: type = SS3D):
        super().__init__()
        self.blocks = nn.ModuleList(
            VSS3DBlock(dim, d_state, i % NUM_ORIENTATIONS, expand, dropout, drop_path, size,
                       scan_impl, ss3d_cls)
            for i in range(num_blocks))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return x
