"""KAN-Mamba bottleneck (after MSD-KMamba): bidirectional spatial Mamba with KAN layers.

Channels-last ``(B, S, S, S, C)`` in and out, like :class:`.vss3d.VSS3DBottleneck`, so it drops
into MedSegMamba's encoder/decoder by name (``bottleneck="kan-mamba"``).

* :class:`RBFKANLinear`: a compact Kolmogorov-Arnold layer. Each input feature x_i is expanded on
  ``grid`` Gaussian radial basis functions on a fixed grid over [-2, 2] (after LayerNorm), and the
  output is ``sum_i sum_g w_{o,i,g} phi_g(x_i) + W_base silu(x)``: a learned univariate function
  per (input, output) edge plus a SiLU base path (the "FastKAN" form of a B-spline KAN; Gaussian
  bases approximate cubic B-splines on a uniform grid and need no recursion).
* :class:`BiMamba`: the volume raster-flattened into one sequence, scanned forward and reversed
  in ONE selective-scan call (2 groups), outputs re-aligned and summed, SiLU-gated.
* :class:`KANMambaBlock`: ``x + DropPath(BiMamba(LN(x)))`` then ``x + DropPath(KAN(LN(x)))``
  -- the VSS3D block's layout with a KAN channel mixer in place of the MLP.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..ops import selective_scan
from .layers import DropPath

NUM_DIRECTIONS = 2


class RBFKANLinear(nn.Module):
    """KAN layer (in_features -> out_features) with ``grid`` Gaussian bases per input; (..., in)."""

    def __init__(self, in_features: int, out_features: int, grid: int = 8,
                 grid_range: tuple[float, float] = (-2.0, 2.0)):
        super().__init__()
        if grid < 2:
            raise ValueError(f"grid: expected at least 2 basis functions, got {grid!r}")
        lo, hi = grid_range
        self.in_features, self.out_features, self.grid = in_features, out_features, grid
        self.register_buffer("centers", torch.linspace(lo, hi, grid), persistent=False)
        self.inv_width = (grid - 1) / (hi - lo)
        self.norm = nn.LayerNorm(in_features)
        self.spline = nn.Linear(in_features * grid, out_features, bias=False)
        self.base = nn.Linear(in_features, out_features)
        nn.init.trunc_normal_(self.spline.weight, std=0.1 / math.sqrt(in_features * grid))

    def basis(self, x: torch.Tensor) -> torch.Tensor:
        """(..., in) -> (..., in * grid) Gaussian basis values."""
        z = (self.norm(x).unsqueeze(-1) - self.centers) * self.inv_width
        return torch.exp(-z * z).flatten(-2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.spline(self.basis(x)) + self.base(F.silu(x))


class BiMamba(nn.Module):
    """Gated Mamba mixer over (B, L, C) scanning the raster order forward and reversed."""

    def __init__(self, dim: int, d_state: int = 16, expand: int = 1, d_conv: int = 3,
                 scan_impl: str | None = None):
        super().__init__()
        self.d_inner = di = expand * dim
        self.d_state, self.dt_rank = d_state, math.ceil(dim / 16)
        self.scan_impl = scan_impl
        self.in_proj = nn.Linear(dim, 2 * di, bias=False)
        self.conv3d = nn.Conv3d(di, di, d_conv, padding=d_conv // 2, groups=di)
        k = NUM_DIRECTIONS
        self.x_proj_weight = nn.Parameter(torch.empty(k, self.dt_rank + 2 * d_state, di))
        self.dt_projs_weight = nn.Parameter(torch.empty(k, di, self.dt_rank))
        self.dt_projs_bias = nn.Parameter(torch.empty(k, di))
        self.A_logs = nn.Parameter(torch.empty(k * di, d_state))
        self.Ds = nn.Parameter(torch.ones(k * di))
        self.out_norm = nn.LayerNorm(di)
        self.out_proj = nn.Linear(di, dim, bias=False)
        self._init_ssm()

    @torch.no_grad()
    def _init_ssm(self, dt_min=1e-3, dt_max=0.1, floor=1e-4):
        self.x_proj_weight.uniform_(-self.d_inner ** -0.5, self.d_inner ** -0.5)
        self.dt_projs_weight.uniform_(-self.dt_rank ** -0.5, self.dt_rank ** -0.5)
        dt = torch.exp(torch.rand(NUM_DIRECTIONS, self.d_inner)
                       * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min)).clamp(min=floor)
        self.dt_projs_bias.copy_(dt + torch.log(-torch.expm1(-dt)))
        self.A_logs.copy_(torch.log(torch.arange(1, self.d_state + 1, dtype=torch.float32))
                          .expand_as(self.A_logs))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, S1, S2, S3, C) -> same shape."""
        b, s1, s2, s3, _ = x.shape
        length, di, r, n = s1 * s2 * s3, self.d_inner, self.dt_rank, self.d_state
        xi, z = self.in_proj(x).chunk(2, dim=-1)
        u = F.silu(self.conv3d(xi.permute(0, 4, 1, 2, 3))).flatten(2)  # (B, Di, L)
        u2 = torch.stack((u, u.flip(-1)), dim=1)  # (B, 2, Di, L)
        x_dbl = torch.einsum("bkdl,kcd->bkcl", u2, self.x_proj_weight)
        dts, bs, cs = torch.split(x_dbl, [r, n, n], dim=2)
        delta = torch.einsum("bkrl,kdr->bkdl", dts, self.dt_projs_weight)
        y = selective_scan(u2.reshape(b, -1, length).float(),
                           delta.reshape(b, -1, length).float(),
                           -torch.exp(self.A_logs.float()), bs.float().contiguous(),
                           cs.float().contiguous(), D=self.Ds.float(),
                           delta_bias=self.dt_projs_bias.float().reshape(-1), impl=self.scan_impl)
        y = y.view(b, NUM_DIRECTIONS, di, length)
        y = (y[:, 0] + y[:, 1].flip(-1)).transpose(1, 2).to(x.dtype)  # (B, L, Di)
        y = self.out_norm(y).view(b, s1, s2, s3, di) * F.silu(z)
        return self.out_proj(y)


class KANMambaBlock(nn.Module):
    def __init__(self, dim: int, d_state: int, expand: int = 1, grid: int = 8,
                 dropout: float = 0.0, drop_path: float = 0.0, scan_impl: str | None = None):
        super().__init__()
        self.ln_1, self.mixer = nn.LayerNorm(dim), BiMamba(dim, d_state, expand, scan_impl=scan_impl)
        self.ln_2, self.kan = nn.LayerNorm(dim), RBFKANLinear(dim, dim, grid)
        self.dropout = nn.Dropout(dropout)
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop_path(self.dropout(self.mixer(self.ln_1(x))))
        return x + self.drop_path(self.dropout(self.kan(self.ln_2(x))))


class KANMambaBottleneck(nn.Module):
    """``num_blocks`` KAN-Mamba blocks; (B, S, S, S, C) in and out (signature of the others)."""

    def __init__(self, dim: int, num_blocks: int, d_state: int, size: int | None = None,
                 dropout: float = 0.0, drop_path: float = 0.0, scan_impl: str | None = None,
                 expand: int = 1, grid: int = 8, **_):
        super().__init__()
        self.blocks = nn.ModuleList(
            KANMambaBlock(dim, d_state, expand, grid, dropout, drop_path, scan_impl)
            for _ in range(num_blocks))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return x


def build_kan_mamba(grid: int = 8, **model_kwargs):
    """A MedSegMamba whose bottleneck is :class:`KANMambaBottleneck` (same encoder/decoder).

    Uses ``bottleneck="kan-mamba"`` when the model registry knows it; otherwise builds the paper
    network with a one-block VSS3D placeholder and swaps the bottleneck in.
    """
    from .medsegmamba import BOTTLENECKS, MedSegMamba

    kwargs = {k: v for k, v in model_kwargs.items() if k != "bottleneck"}
    if "kan-mamba" in BOTTLENECKS and grid == 8:
        return MedSegMamba(bottleneck="kan-mamba", **kwargs)
    blocks = kwargs.get("num_blocks", 9)
    model = MedSegMamba(**{**kwargs, "num_blocks": 1})
    model.bottleneck = KANMambaBottleneck(
        model.channels[5], blocks, kwargs.get("d_state", 64), model.bottleneck_size,
        dropout=kwargs.get("dropout", 0.0), drop_path=kwargs.get("drop_path", 0.0),
        scan_impl=kwargs.get("scan_impl"), expand=kwargs.get("expand", 1), grid=grid)
    return model


__all__ = ["RBFKANLinear", "BiMamba", "KANMambaBlock", "KANMambaBottleneck", "build_kan_mamba"]
