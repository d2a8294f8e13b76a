"""SS3D's depthwise 3x3x3 convolution and SiLU in one Triton kernel, on channels-last input, and its backward.

SS3D convolves each of its d_inner channels with its own 3x3x3 filter (padding 1, bias) and
takes the SiLU. Its input, the in-projection's output, is channels-last. cuDNN (eager and under
torch.compile, which calls it too) handles that grouped convolution with a layout transform
and a grouped implicit GEMM: 1.3 ms per 96^3 patch of the paper network at batch 8 on an H100,
half of it the transform, for a convolution of ~0.1 GFLOP that reads 3.5 MB
(benchmarks/results/2026-12-07-h100-s18/call1_conv_layers). Here each program reads a block of voxels
x channels for each of the 27 taps straight from the channels-last tensor (neighbouring taps hit
the cache), accumulates in float32 and writes silu(conv + bias) channels-last, as SS3D's scan
reads it. Its backward (`_dwconv3_silu_bwd_kernel`) recomputes conv + bias, takes the SiLU's
derivative, sums the gradients of the weights and bias over each program's voxels (the launcher
sums the programs) and gets the input's gradient with the same kernel run on the transposed taps.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl


@triton.jit
def _voxel_block(BLOCK_V: tl.constexpr, BLOCK_C: tl.constexpr, n_vox, S0, S1, S2, C):
    """The program's voxels (flat over B, S0, S1, S2) and channels, their masks and grid coordinates."""
    v = tl.program_id(0) * BLOCK_V + tl.arange(0, BLOCK_V)
    c = tl.program_id(1) * BLOCK_C + tl.arange(0, BLOCK_C)
    k = v % S2
    j = (v // S2) % S1
    i = (v // (S2 * S1)) % S0
    return v, c, v < n_vox, c < C, i, j, k


@triton.jit
def _tap(x_ptr, t: tl.constexpr, v, c, v_ok, c_ok, i, j, k, S0, S1, S2, C, SIGN: tl.constexpr):
    """x at the neighbours of tap t ((i, j, k) + SIGN * (di, dj, dk)), 0 outside the volume, float32."""
    di, dj, dk = SIGN * (t // 9 - 1), SIGN * ((t // 3) % 3 - 1), SIGN * (t % 3 - 1)
    ok = (v_ok & (i + di >= 0) & (i + di < S0) & (j + dj >= 0) & (j + dj < S1) & (k + dk >= 0) & (k + dk < S2))
    # the neighbour's flat voxel index: same batch element, shifted (the mask keeps it inside)
    nb = v + (di * S1 + dj) * S2 + dk
    return tl.load(x_ptr + nb.to(tl.int64)[:, None] * C + c[None, :], mask=ok[:, None] & c_ok[None, :],
                   other=0.0).to(tl.float32)


@triton.jit
def _dwconv3_kernel(x_ptr, w_ptr, b_ptr, y_ptr, n_vox, S0, S1, S2, C,
                    SILU: tl.constexpr, SIGN: tl.constexpr, BLOCK_V: tl.constexpr, BLOCK_C: tl.constexpr):
    # x, y: (B, S0, S1, S2, C) contiguous; w: (27, C) float32, tap (i, j, k) at row 9i + 3j + k;
    # b: (C,) float32. One program: BLOCK_V voxels x BLOCK_C channels.
    # SILU: y = silu(conv(x) + b) (the forward); else y = sum_t w_t x(v + SIGN * offset_t), which with
    # SIGN = -1 is the convolution's transpose (the gradient of its input)
    v, c, v_ok, c_ok, i, j, k = _voxel_block(BLOCK_V, BLOCK_C, n_vox, S0, S1, S2, C)
    acc = tl.zeros((BLOCK_V, BLOCK_C), dtype=tl.float32)
    for t in tl.static_range(27):
        w = tl.load(w_ptr + t * C + c, mask=c_ok, other=0.0)
        acc += _tap(x_ptr, t, v, c, v_ok, c_ok, i, j, k, S0, S1, S2, C, SIGN) * w[None, :]
    if SILU:
        acc += tl.load(b_ptr + c, mask=c_ok, other=0.0)[None, :]
        acc = acc / (1.0 + tl.exp(-acc))
    tl.store(y_ptr + v.to(tl.int64)[:, None] * C + c[None, :], acc.to(y_ptr.dtype.element_ty),
             mask=v_ok[:, None] & c_ok[None, :])


@triton.jit
def _dwconv3_silu_bwd_kernel(x_ptr, w_ptr, b_ptr, dy_ptr, g_ptr, dw_ptr, db_ptr, n_vox, S0, S1, S2, C,
                             BLOCK_V: tl.constexpr, BLOCK_C: tl.constexpr):
    # The gradient at the SiLU's input, g = dy * silu'(z) with z = conv(x) + b recomputed, stored
    # (B, S0, S1, S2, C) float32 for the input's gradient (the transposed convolution of g); and
    # this program's sums over its voxels of g (db) and of g times each tap's neighbours (dw),
    # stored in row pid_v of db (n_vblocks, C) and dw (n_vblocks, 27, C) for the launcher to sum.
    v, c, v_ok, c_ok, i, j, k = _voxel_block(BLOCK_V, BLOCK_C, n_vox, S0, S1, S2, C)
    z = tl.zeros((BLOCK_V, BLOCK_C), dtype=tl.float32)
    for t in tl.static_range(27):
        w = tl.load(w_ptr + t * C + c, mask=c_ok, other=0.0)
        z += _tap(x_ptr, t, v, c, v_ok, c_ok, i, j, k, S0, S1, S2, C, 1) * w[None, :]
    z += tl.load(b_ptr + c, mask=c_ok, other=0.0)[None, :]
    vc = v.to(tl.int64)[:, None] * C + c[None, :]
    ok = v_ok[:, None] & c_ok[None, :]
    sig = 1.0 / (1.0 + tl.exp(-z))
    g = tl.load(dy_ptr + vc, mask=ok, other=0.0).to(tl.float32) * sig * (1.0 + z * (1.0 - sig))
    g = tl.where(ok, g, 0.0)
    tl.store(g_ptr + vc, g, mask=ok)
    row = tl.program_id(0).to(tl.int64)
    tl.store(db_ptr + row * C + c, tl.sum(g, axis=0), mask=c_ok)
    for t in tl.static_range(27):
        dw = tl.sum(g * _tap(x_ptr, t, v, c, v_ok, c_ok, i, j, k, S0, S1, S2, C, 1), axis=0)
        tl.store(dw_ptr + (row * 27 + t) * C + c, dw, mask=c_ok)


_BLOCK_V, _BLOCK_C = 32, 64


def _launch(x, weight, bias, y, silu, sign):
    batch, s0, s1, s2, channels = x.shape
    n_vox = batch * s0 * s1 * s2
    grid = (triton.cdiv(n_vox, _BLOCK_V), triton.cdiv(channels, _BLOCK_C))
    _dwconv3_kernel[grid](x, weight, bias, y, n_vox, s0, s1, s2, channels, SILU=silu, SIGN=sign,
                          BLOCK_V=_BLOCK_V, BLOCK_C=_BLOCK_C, num_warps=4)
    return y


@torch.library.custom_op("medsegmamba::dwconv3_silu", mutates_args=())
def _dwconv3_silu_op(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """x (B, S0, S1, S2, C) contiguous; weight (27, C), bias (C,) float32 -> (B, S0, S1, S2, C) in x's dtype."""
    return _launch(x, weight, bias, torch.empty_like(x), True, 1)


@_dwconv3_silu_op.register_fake
def _dwconv3_silu_fake(x, weight, bias):
    return torch.empty_like(x)


@torch.library.custom_op("medsegmamba::dwconv3_silu_backward", mutates_args=())
def _dwconv3_silu_bwd_op(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor,
                         dy: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Gradients of `_dwconv3_silu_op` at x, weight, bias from dy (its output's gradient)."""
    batch, s0, s1, s2, channels = x.shape
    n_vox = batch * s0 * s1 * s2
    grid = (triton.cdiv(n_vox, _BLOCK_V), triton.cdiv(channels, _BLOCK_C))
    g = torch.empty(x.shape, device=x.device, dtype=torch.float32)
    dw = torch.empty((grid[0], 27, channels), device=x.device, dtype=torch.float32)
    db = torch.empty((grid[0], channels), device=x.device, dtype=torch.float32)
    _dwconv3_silu_bwd_kernel[grid](x, weight, bias, dy.contiguous(), g, dw, db, n_vox, s0, s1, s2, channels,
                                   BLOCK_V=_BLOCK_V, BLOCK_C=_BLOCK_C, num_warps=4)
    dx = _launch(g, weight, bias, torch.empty_like(x), False, -1)
    return dx, dw.sum(0), db.sum(0)


@_dwconv3_silu_bwd_op.register_fake
def _dwconv3_silu_bwd_fake(x, weight, bias, dy):
    return torch.empty_like(x), torch.empty_like(weight), torch.empty_like(bias)


def _setup_context(ctx, inputs, output):
    ctx.save_for_backward(*inputs)


def _backward(ctx, dy):
    return _dwconv3_silu_bwd_op(*ctx.saved_tensors, dy)


_dwconv3_silu_op.register_autograd(_backward, setup_context=_setup_context)


def dwconv3_silu_triton(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """silu(conv3d(x, weight, bias, padding=1, groups=C)) for x (B, C, S0, S1, S2) on CUDA, weight
    (C, 1, 3, 3, 3); the result is channels-last (a (B, C, S0, S1, S2) view of (B, S0, S1, S2, C)
    memory) in x's dtype, or in bf16/fp16 under autocast as cuDNN's would be. Differentiable in x,
    weight and bias."""
    channels = x.shape[1]
    if weight.shape != (channels, 1, 3, 3, 3):
        raise ValueError(f"dwconv3_silu_triton: weight must be ({channels}, 1, 3, 3, 3), got {tuple(weight.shape)}")
    if torch.is_autocast_enabled(x.device.type):
        x = x.to(torch.get_autocast_dtype(x.device.type))
    cl = x.permute(0, 2, 3, 4, 1)
    cl = cl if cl.is_contiguous() else cl.contiguous()
    w = weight.reshape(channels, 27).t().float().contiguous()
    b = torch.zeros(channels, device=x.device) if bias is None else bias.float()
    return _dwconv3_silu_op(cl, w, b).permute(0, 4, 1, 2, 3)
