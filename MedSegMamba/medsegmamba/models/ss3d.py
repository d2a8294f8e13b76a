"""SS3D: the 8-direction 3-D selective-scan mixer of MedSegMamba (the authors' ``SS3D_v5``).

Input and output are channels-last ``(B, H, W, D, C)`` with H = W = D = ``size`` (12 in the paper).
The fast path never builds the 8 sequences: the projections run on the volume's voxels, and
:func:`medsegmamba.ops.selective_scan_paths` walks each direction's precomputed path (see
:mod:`.scan_paths`) over them, writing each output back to its voxel; a sum over the 8 directions
follows. :class:`SS3DAuthorsLayout` computes the same thing the way the authors' code does
(rot90, transposes, snake table, flips, one scan of the stacked sequences); tests use it to check
the fast path.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..ops import selective_scan, selective_scan_paths
from ..ops.depthwise_conv import depthwise_conv3d_silu
from . import scan_paths as sp

K = sp.NUM_DIRECTIONS


class ScanTables(nn.Module):
    """The authors' snake table and its inverse as int64 (1, 1, L) state-dict entries.

    Kept so that the authors' checkpoints load strictly and ours load in their code. On load the
    incoming tables are checked against the snake table; they are not used in the hot path.
    """

    def __init__(self, size: int):
        super().__init__()
        table = sp.snake_table(size)
        self.register_buffer("index_flat", table.view(1, 1, -1).clone())
        self.register_buffer("index_flat_inv", torch.argsort(table).view(1, 1, -1).clone())

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        for name in ("index_flat", "index_flat_inv"):
            key = prefix + name
            if key in state_dict:
                got, want = state_dict[key], getattr(self, name)
                if tuple(got.shape) != tuple(want.shape) or not torch.equal(got.cpu().long(), want.cpu()):
                    raise ValueError(
                        f"{key}: expected the 3-D snake table of shape {tuple(want.shape)}, "
                        f"got a different table of shape {tuple(got.shape)}")
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


class SS3D(nn.Module):
    """8-direction selective scan over a (B, S, S, S, C) volume; returns (B, S, S, S, C).

    ``scan_impl`` is passed to :func:`medsegmamba.ops.selective_scan` (None = fastest available).
    """

    def __init__(self, d_model: int, d_state: int = 16, expand: int = 1, orientation: int = 0,
                 dropout: float = 0.0, size: int = sp.SIZE, dt_min: float = 1e-3, dt_max: float = 0.1,
                 dt_init_floor: float = 1e-4, scan_impl: str | None = None):
        super().__init__()
        if d_model <= 0 or d_state <= 0 or expand <= 0:
            raise ValueError(f"SS3D: d_model, d_state and expand must be positive, "
                             f"got {d_model!r}, {d_state!r}, {expand!r}")
        self.d_model, self.d_state, self.expand = d_model, d_state, expand
        self.d_inner = d_inner = expand * d_model
        self.dt_rank = dt_rank = math.ceil(d_model / 16)
        self.orientation = sp.check_orientation(orientation)
        self.size = size
        self.scan_impl = scan_impl

        self.in_proj = nn.Linear(d_model, d_inner, bias=False)
        self.conv3d = nn.Conv3d(d_inner, d_inner, 3, padding=1, groups=d_inner, bias=True)
        self.x_proj_weight = nn.Parameter(torch.empty(K, dt_rank + 2 * d_state, d_inner))
        self.dt_projs_weight = nn.Parameter(torch.empty(K, d_inner, dt_rank))
        self.dt_projs_bias = nn.Parameter(torch.empty(K, d_inner))
        self.A_logs = nn.Parameter(torch.empty(K * d_inner, d_state))
        self.Ds = nn.Parameter(torch.empty(K * d_inner))
        self.out_norm = nn.LayerNorm(d_inner)
        self.out_proj = nn.Linear(d_inner, d_model, bias=False)
        self.dropout = nn.Dropout(dropout)
        self.scans = ScanTables(size)
        self._init_ssm(dt_min, dt_max, dt_init_floor)

        # (8, L): the voxel (flat index) each direction visits at each step
        self.register_buffer("paths", torch.empty(0, dtype=torch.int32), persistent=False)
        self.set_orientation(self.orientation)

    def set_orientation(self, orientation: int) -> None:
        """Use the 8 paths of ``orientation`` (0..5); the weights are unchanged."""
        self.orientation = sp.check_orientation(orientation)
        self.paths = sp.scan_paths(self.size)[orientation].to(self.paths.device, torch.int32)

    @torch.no_grad()
    def _init_ssm(self, dt_min, dt_max, dt_init_floor):
        bound = self.d_inner ** -0.5  # nn.Linear's default init of the authors' x_proj
        self.x_proj_weight.uniform_(-bound, bound)
        std = self.dt_rank ** -0.5
        self.dt_projs_weight.uniform_(-std, std)
        dt = torch.exp(torch.rand(K, self.d_inner) * (math.log(dt_max) - math.log(dt_min))
                       + math.log(dt_min)).clamp(min=dt_init_floor)
        self.dt_projs_bias.copy_(dt + torch.log(-torch.expm1(-dt)))  # inverse softplus
        a = torch.arange(1, self.d_state + 1, dtype=torch.float32)
        self.A_logs.copy_(torch.log(a).expand(K * self.d_inner, -1))
        self.Ds.fill_(1.0)
        for p in (self.A_logs, self.Ds):
            p._no_weight_decay = True

    # -- forward --------------------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, h, w, d, _ = self._check_input(x)
        x = self.in_proj(x).permute(0, 4, 1, 2, 3)  # (B, Ci, S, S, S), channels-last memory
        x = depthwise_conv3d_silu(x, self.conv3d)  # F.silu(self.conv3d(x)), fused on CUDA
        y = self.mix(x)  # (B, L, Ci)
        y = self.out_norm(y.view(b, h, w, d, self.d_inner))
        return self.dropout(self.out_proj(y))

    def mix(self, x: torch.Tensor) -> torch.Tensor:
        """(B, Ci, S, S, S) -> the 8 directions' scans summed at each voxel, (B, L, Ci) float32."""
        b, ci = x.shape[:2]
        flat = x.permute(0, 2, 3, 4, 1).reshape(b, -1, ci)  # (B, L, Ci): free when x is channels-last
        # Each direction's projections of every voxel, in voxel order: the same numbers as those
        # of its sequence, which only visits the voxels in another order. One product for all 8.
        x_dbl = torch.matmul(flat, self.x_proj_weight.reshape(-1, ci).t())  # (B, L, 8 * (R+2N))
        x_dbl = x_dbl.view(b, flat.shape[1], K, -1).transpose(1, 2)  # (B, 8, L, R+2N), a view
        dts, bs, cs = torch.split(x_dbl, [self.dt_rank, self.d_state, self.d_state], dim=-1)
        dts = torch.matmul(dts, self.dt_projs_weight.transpose(1, 2))  # (B, 8, L, Ci)
        y = selective_scan_paths(flat, dts, -torch.exp(self.A_logs.float()), bs, cs, self.paths,
                                 D=self.Ds.float(), delta_bias=self.dt_projs_bias.float().reshape(-1),
                                 delta_softplus=True, impl=self.scan_impl)  # (B, L, 8, Ci)
        return y.sum(2)

    def _check_input(self, x: torch.Tensor):
        s = self.size
        if x.dim() != 5 or tuple(x.shape[1:4]) != (s, s, s) or x.shape[4] != self.d_model:
            raise ValueError(f"SS3D input: expected (B, {s}, {s}, {s}, {self.d_model}) channels-last, "
                             f"got {tuple(x.shape)}")
        return x.shape

    def extra_repr(self) -> str:
        return (f"d_model={self.d_model}, d_state={self.d_state}, expand={self.expand}, "
                f"dt_rank={self.dt_rank}, orientation={self.orientation}, size={self.size}")


class SS3DAuthorsLayout(SS3D):
    """Same parameters and maths as :class:`SS3D`, laid out like the authors' ``forward_core``:
    four rot90 copies, orientation transposes, snake re-ordering, reversals, one scan of the 8
    stacked sequences; then the inverse of each step and a sum. Slow; for tests and benchmarks only."""

    def mix(self, x: torch.Tensor) -> torch.Tensor:
        return self.unscan(self.ssm(self.scan(x)))

    def ssm(self, xs: torch.Tensor) -> torch.Tensor:
        """Selective scan of the 8 sequences (B, 8, L, Ci) -> (B, 8, L, Ci), in float32."""
        b, _, length, ci = xs.shape
        r, n = self.dt_rank, self.d_state
        x_dbl = torch.matmul(xs, self.x_proj_weight.transpose(1, 2))  # (B, 8, L, R+2N)
        dts, bs, cs = torch.split(x_dbl, [r, n, n], dim=-1)
        dts = torch.matmul(dts, self.dt_projs_weight.transpose(1, 2))  # (B, 8, L, Ci)

        def to_scan(t):  # (B, 8, L, X) -> contiguous float32 (B, 8, X, L) in one copy
            t = t.transpose(2, 3)
            return torch.empty(t.shape, dtype=torch.float32, device=t.device).copy_(t)

        y = selective_scan(
            to_scan(xs).view(b, K * ci, length), to_scan(dts).view(b, K * ci, length),
            -torch.exp(self.A_logs.float()), to_scan(bs), to_scan(cs),
            D=self.Ds.float(), delta_bias=self.dt_projs_bias.float().reshape(-1),
            delta_softplus=True, impl=self.scan_impl)  # (B, 8*Ci, L)
        return y.view(b, K, ci, length).transpose(2, 3)

    def scan(self, x: torch.Tensor) -> torch.Tensor:
        b, c = x.shape[:2]
        table = self.scans.index_flat.view(-1)
        seqs = [sp.orient(sp.rotate(x, k), self.orientation).reshape(b, c, -1)[..., table]
                for k in range(4)]
        xs = torch.stack(seqs, dim=1)  # (B, 4, C, L)
        xs = torch.cat([xs, xs.flip(-1)], dim=1)  # (B, 8, C, L)
        return xs.transpose(2, 3)

    def unscan(self, y: torch.Tensor) -> torch.Tensor:
        b, _, length, c = y.shape
        s = self.size
        y = y.transpose(2, 3)  # (B, 8, C, L)
        y = torch.cat([y[:, :4], y[:, 4:].flip(-1)], dim=1)
        inv = self.scans.index_flat_inv.view(-1)
        out = 0
        for k in range(K):
            vol = y[:, k][..., inv].reshape(b, c, s, s, s)  # decode the snake
            out = out + sp.unrotate(sp.unorient(vol, self.orientation), k % 4)
        return out.reshape(b, c, length).transpose(1, 2)
