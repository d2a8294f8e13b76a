"""Mamba S6 selective scan with grouped B/C.

Shapes: u, delta (B, D, L); A (D, N); B, C (B, G, N, L) with D divisible by G (channel d reads
group d // (D // G)); D_skip (D,); delta_bias (D,).

    dl_t = softplus(delta_t + delta_bias)
    h_t  = exp(dl_t * A) * h_{t-1} + dl_t * B_t * u_t
    y_t  = <h_t, C_t> + D_skip * u_t

TEMPORARY minimal reference (lead's stub): correct, chunked over time, not tuned. The ops owner
replaces it with the tuned reference, the Triton kernel and the dispatch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def selective_scan_ref(u, delta, A, B, C, D=None, delta_bias=None, delta_softplus=True):
    """Plain-PyTorch scan in float32 (float64 stays float64); returns y (B, D, L) in u's dtype."""
    dtype = torch.float64 if u.dtype == torch.float64 else torch.float32
    u_, dl = u.to(dtype), delta.to(dtype)
    if delta_bias is not None:
        dl = dl + delta_bias.to(dtype)[None, :, None]
    if delta_softplus:
        dl = F.softplus(dl)
    batch, dim, length = u_.shape
    groups, n = B.shape[1], A.shape[1]
    Bx = B.to(dtype).repeat_interleave(dim // groups, dim=1)  # (B, D, N, L)
    Cx = C.to(dtype).repeat_interleave(dim // groups, dim=1)
    A_ = A.to(dtype)
    h = u_.new_zeros(batch, dim, n)
    ys = []
    for t in range(length):
        h = torch.exp(dl[:, :, t, None] * A_) * h + (dl[:, :, t] * u_[:, :, t])[..., None] * Bx[..., t]
        ys.append((h * Cx[..., t]).sum(-1))
    y = torch.stack(ys, dim=-1)
    if D is not None:
        y = y + D.to(dtype)[None, :, None] * u_
    return y.to(u.dtype)


def selective_scan(u, delta, A, B, C, D=None, delta_bias=None, delta_softplus=True, impl=None):
    """Public entry point: picks the fastest available implementation (see module docstring)."""
    return selective_scan_ref(u, delta, A, B, C, D, delta_bias, delta_softplus)
