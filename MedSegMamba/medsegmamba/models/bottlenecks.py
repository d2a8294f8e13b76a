"""Bottlenecks of the paper's baselines (same encoder/decoder as MedSegMamba).

Both take and return channels-last ``(B, S, S, S, C)`` like :class:`.vss3d.VSS3DBottleneck`.

* :class:`TriMambaBottleneck` (SegMambaBot): SegMamba-style tri-oriented Mamba -- a gated Mamba
  mixer whose forward, reversed and inter-slice sequences are scanned in one call and summed.
* :class:`TransformerBottleneck` (TABSurfer): learned positional encoding + pre-norm Transformer.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..ops import selective_scan
from .layers import DropPath, Mlp

NUM_SEQ = 3  # forward, reversed, inter-slice


class TriMamba(nn.Module):
    """Mamba mixer over (B, L, C) with three token orders sharing in/out projections and the gate."""

    def __init__(self, dim: int, size: int, d_state: int = 16, expand: int = 2, d_conv: int = 4,
                 scan_impl: str | None = None):
        super().__init__()
        self.d_inner = di = expand * dim
        self.d_state, self.dt_rank = d_state, math.ceil(dim / 16)
        self.scan_impl = scan_impl
        self.in_proj = nn.Linear(dim, 2 * di, bias=False)
        self.conv1d = nn.Conv1d(NUM_SEQ * di, NUM_SEQ * di, d_conv, groups=NUM_SEQ * di,
                                padding=d_conv - 1)
        self.x_proj_weight = nn.Parameter(torch.empty(NUM_SEQ, self.dt_rank + 2 * d_state, di))
        self.dt_projs_weight = nn.Parameter(torch.empty(NUM_SEQ, di, self.dt_rank))
        self.dt_projs_bias = nn.Parameter(torch.empty(NUM_SEQ, di))
        self.A_logs = nn.Parameter(torch.empty(NUM_SEQ * di, d_state))
        self.Ds = nn.Parameter(torch.ones(NUM_SEQ * di))
        self.out_proj = nn.Linear(di, dim, bias=False)
        length = size ** 3
        order = torch.arange(length).reshape(size, size, size).permute(2, 1, 0).reshape(-1)
        fwd = torch.arange(length)
        self.register_buffer("orders", torch.stack([fwd, fwd.flip(0), order]), persistent=False)
        self.register_buffer("inverse_orders", torch.argsort(self.orders, dim=-1), persistent=False)
        self._init_ssm()

    @torch.no_grad()
    def _init_ssm(self, dt_min=1e-3, dt_max=0.1, floor=1e-4):
        self.x_proj_weight.uniform_(-self.d_inner ** -0.5, self.d_inner ** -0.5)
        self.dt_projs_weight.uniform_(-self.dt_rank ** -0.5, self.dt_rank ** -0.5)
        dt = torch.exp(torch.rand(NUM_SEQ, self.d_inner) * (math.log(dt_max) - math.log(dt_min))
                       + math.log(dt_min)).clamp(min=floor)
        self.dt_projs_bias.copy_(dt + torch.log(-torch.expm1(-dt)))
        a = torch.arange(1, self.d_state + 1, dtype=torch.float32)
        self.A_logs.copy_(torch.log(a).expand_as(self.A_logs))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, length, _ = x.shape
        di, r, n = self.d_inner, self.dt_rank, self.d_state
        xz = self.in_proj(x)
        xi, z = xz[..., :di], xz[..., di:]
        seqs = xi[:, self.orders.reshape(-1)].view(b, NUM_SEQ, length, di)  # (B, 3, L, Di)
        seqs = seqs.permute(0, 1, 3, 2).reshape(b, NUM_SEQ * di, length)
        u = F.silu(self.conv1d(seqs)[..., :length])  # causal depthwise conv
        u3 = u.view(b, NUM_SEQ, di, length)
        x_dbl = torch.einsum("bkdl,kcd->bkcl", u3, self.x_proj_weight)
        dts, bs, cs = torch.split(x_dbl, [r, n, n], dim=2)
        delta = torch.einsum("bkrl,kdr->bkdl", dts, self.dt_projs_weight)
        y = selective_scan(u.float(), delta.reshape(b, -1, length).float(),
                           -torch.exp(self.A_logs.float()), bs.float().contiguous(),
                           cs.float().contiguous(), D=self.Ds.float(),
                           delta_bias=self.dt_projs_bias.float().reshape(-1), impl=self.scan_impl)
        y = y.view(b, NUM_SEQ, di, length).transpose(2, 3).to(x.dtype)  # (B, 3, L, Di)
        y = y.reshape(b, NUM_SEQ * length, di)
        offsets = (torch.arange(NUM_SEQ, device=x.device) * length)[:, None]
        y = y.index_select(1, (self.inverse_orders + offsets).reshape(-1)).view(b, NUM_SEQ, length, di)
        return self.out_proj(y.sum(1) * F.silu(z))


class _PreNormBlock(nn.Module):
    def __init__(self, dim: int, mixer: nn.Module, dropout: float, drop_path: float):
        super().__init__()
        self.ln_1, self.mixer = nn.LayerNorm(dim), mixer
        self.ln_2, self.mlp = nn.LayerNorm(dim), Mlp(dim, 2 * dim, dropout)
        self.drop_path = DropPath(drop_path)

    def forward(self, x):
        x = x + self.drop_path(self.mixer(self.ln_1(x)))
        return x + self.drop_path(self.mlp(self.ln_2(x)))


class _Attention(nn.Module):
    def __init__(self, dim: int, num_heads: int, dropout: float):
        super().__init__()
        self.attn = nn.MultiheadAttention(dim, num_heads, dropout=dropout, batch_first=True)

    def forward(self, x):
        return self.attn(x, x, x, need_weights=False)[0]


class _TokenBottleneck(nn.Module):
    """(B, S, S, S, C) -> tokens (B, L, C) -> blocks -> back."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        t = self.tokens_in(x.reshape(shape[0], -1, shape[-1]))
        for block in self.blocks:
            t = block(t)
        return t.reshape(shape)

    def tokens_in(self, t):
        return t


class TriMambaBottleneck(_TokenBottleneck):
    def __init__(self, dim: int, num_blocks: int, d_state: int, size: int, dropout: float = 0.0,
                 drop_path: float = 0.0, scan_impl: str | None = None, **_):
        super().__init__()
        self.blocks = nn.ModuleList(
            _PreNormBlock(dim, TriMamba(dim, size, d_state, scan_impl=scan_impl), dropout, drop_path)
            for _ in range(num_blocks))


class TransformerBottleneck(_TokenBottleneck):
    def __init__(self, dim: int, num_blocks: int, size: int, num_heads: int = 16,
                 dropout: float = 0.0, drop_path: float = 0.0, **_):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"num_heads: the bottleneck width {dim} must be divisible by it, "
                             f"got {num_heads}")
        self.pos_embed = nn.Parameter(torch.zeros(1, size ** 3, dim))
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        self.blocks = nn.ModuleList(
            _PreNormBlock(dim, _Attention(dim, num_heads, dropout), dropout, drop_path)
            for _ in range(num_blocks))

    def tokens_in(self, t):
        return t + self.pos_embed.to(t.dtype)
