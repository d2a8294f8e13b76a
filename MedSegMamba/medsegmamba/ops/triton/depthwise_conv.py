"""SS3D's depthwise 3x3x3 convolution and SiLU in one Triton kernel, on channels-last input (inference).

SS3D convolves each of its d_inner channels with its own 3x3x3 filter (padding 1, bias) and
takes the SiLU. Its input, the in-projection's output, is channels-last. cuDNN (eager and under
torch.compile, which calls it too) handles that grouped convolution with a layout transform
and a grouped implicit GEMM: 1.3 ms per 96^3 patch of the paper network at batch 8 on an H100,
half of it the transform, for a convolution of ~0.1 GFLOP that reads 3.5 MB
(benchmarks/results/2026-12-07-h100-s18/call1_conv_layers). Here each program reads a block of voxels
x channels for each of the 27 taps straight from the channels-last tensor (neighbouring taps hit
the cache), accumulates in float32 and writes silu(conv + bias) channels-last, as SS3D's scan
reads it. No autograd: training keeps cuDNN's convolution (`depthwise_conv3d_silu`).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl


@triton.jit
def _dwconv3_silu_kernel(x_ptr, w_ptr, b_ptr, y_ptr, n_vox, S0, S1, S2, C,
                         BLOCK_V: tl.constexpr, BLOCK_C: tl.constexpr):
    # x, y: (B, S0, S1, S2, C) contiguous; w: (27, C) float32, tap (i, j, k) at row 9i + 3j + k;
    # b: (C,) float32. One program: BLOCK_V voxels (flat over B, S0, S1, S2) x BLOCK_C channels.
    v = tl.program_id(0) * BLOCK_V + tl.arange(0, BLOCK_V)
    c = tl.program_id(1) * BLOCK_C + tl.arange(0, BLOCK_C)
    v_ok, c_ok = v < n_vox, c < C
    k = v % S2
    j = (v // S2) % S1
    i = (v // (S2 * S1)) % S0
    acc = tl.zeros((BLOCK_V, BLOCK_C), dtype=tl.float32)
    for t in tl.static_range(27):
        di, dj, dk = t // 9 - 1, (t // 3) % 3 - 1, t % 3 - 1
        ok = (v_ok & (i + di >= 0) & (i + di < S0) & (j + dj >= 0) & (j + dj < S1)
              & (k + dk >= 0) & (k + dk < S2))
        # the neighbour's flat voxel index: same batch element, shifted (the mask keeps it inside)
        nb = v + (di * S1 + dj) * S2 + dk
        xs = tl.load(x_ptr + nb.to(tl.int64)[:, None] * C + c[None, :], mask=ok[:, None] & c_ok[None, :], other=0.0)
        w = tl.load(w_ptr + t * C + c, mask=c_ok, other=0.0)
        acc += xs.to(tl.float32) * w[None, :]
    acc += tl.load(b_ptr + c, mask=c_ok, other=0.0)[None, :]
    out = acc / (1.0 + tl.exp(-acc))
    tl.store(y_ptr + v.to(tl.int64)[:, None] * C + c[None, :], out.to(y_ptr.dtype.element_ty),
             mask=v_ok[:, None] & c_ok[None, :])


@torch.library.custom_op("medsegmamba::dwconv3_silu", mutates_args=())
def _dwconv3_silu_op(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """x (B, S0, S1, S2, C) contiguous; weight (27, C), bias (C,) float32 -> (B, S0, S1, S2, C) in x's dtype."""
    batch, s0, s1, s2, channels = x.shape
    y = torch.empty_like(x)
    n_vox = batch * s0 * s1 * s2
    block_v, block_c = 32, 64
    grid = (triton.cdiv(n_vox, block_v), triton.cdiv(channels, block_c))
    _dwconv3_silu_kernel[grid](x, weight, bias, y, n_vox, s0, s1, s2, channels, BLOCK_V=block_v, BLOCK_C=block_c,
                               num_warps=4)
    return y


@_dwconv3_silu_op.register_fake
def _dwconv3_silu_fake(x, weight, bias):
    return torch.empty_like(x)


def dwconv3_silu_triton(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """silu(conv3d(x, weight, bias, padding=1, groups=C)) for x (B, C, S0, S1, S2) on CUDA, weight
    (C, 1, 3, 3, 3); the result is channels-last (a (B, C, S0, S1, S2) view of (B, S0, S1, S2, C)
    memory) in x's dtype, or in bf16/fp16 under autocast as cuDNN's would be."""
    channels = x.shape[1]
    if weight.shape != (channels, 1, 3, 3, 3):
        raise ValueError(f"dwconv3_silu_triton: weight must be ({channels}, 1, 3, 3, 3), got {tuple(weight.shape)}")
    if torch.is_autocast_enabled(x.device.type):
        x = x.to(torch.get_autocast_dtype(x.device.type))
    cl = x.permute(0, 2, 3, 4, 1)
    cl = cl if cl.is_contiguous() else cl.contiguous()
    w = weight.detach().reshape(channels, 27).t().float().contiguous()
    b = torch.zeros(channels, device=x.device) if bias is None else bias.detach().float()
    return _dwconv3_silu_op(cl, w, b).permute(0, 4, 1, 2, 3)
