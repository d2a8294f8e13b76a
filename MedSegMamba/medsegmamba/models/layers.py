"""CNN building blocks of MedSegMamba's encoder/decoder (the authors' key names).

All blocks take and return channels-first tensors (B, C, H, W, D). They also accept tensors in
``torch.channels_last_3d`` memory format; nothing here forces a layout change.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

GN_GROUPS = 8


class GroupNorm(nn.GroupNorm):
    """``nn.GroupNorm`` (same keys, same maths) with an optional fused statistics path.

    ``fused=False`` (default) calls ``F.group_norm``. ``fused=True`` computes the per-group mean and
    variance once in float32 and applies one ``x * scale + shift`` in the input's dtype, which
    avoids the float32 round trip ``F.group_norm`` makes under bf16 autocast and works on
    channels-last tensors without a layout copy. In float32 both paths agree to rounding.
    """

    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5, affine: bool = True):
        super().__init__(num_groups, num_channels, eps=eps, affine=affine)
        self.fused = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.fused:
            return super().forward(x)
        return group_norm_fused(x, self.num_groups, self.weight, self.bias, self.eps)


def group_norm_fused(x, groups, weight, bias, eps):
    """GroupNorm of ``x`` (B, C, *S): statistics in float32, affine in ``x``'s dtype."""
    b, c = x.shape[:2]
    xf = x.float()
    # Reduce over (channels in group, spatial): view as (B, G, C/G, S) without a copy of x's memory.
    xg = xf.reshape(b, groups, c // groups, -1)
    var, mean = torch.var_mean(xg, dim=(2, 3), unbiased=False)
    rstd = torch.rsqrt(var + eps)  # (B, G)
    rstd_c = rstd.repeat_interleave(c // groups, dim=1)  # (B, C)
    mean_c = mean.repeat_interleave(c // groups, dim=1)
    scale = rstd_c * weight.float() if weight is not None else rstd_c
    shift = -mean_c * scale
    if bias is not None:
        shift = shift + bias.float()
    view = (b, c) + (1,) * (x.dim() - 2)
    return torch.addcmul(shift.to(x.dtype).view(view), x, scale.to(x.dtype).view(view))


class PointwiseConv3d(nn.Conv3d):
    """A 1x1x1 ``nn.Conv3d`` (same parameters and state-dict keys) that on the CPU runs as one
    batched matrix product over the voxels, ``weight (C_out, C_in) @ x (C_in, D*H*W)`` per sample.
    PyTorch sends 1x1x1 convolutions to its slow direct path there: 16 -> 32 channels at 96^3 takes
    106 ms that way and 43 ms as a product on 2 cores (the default model: 5 % of a patch). Elsewhere
    (CUDA, bf16 autocast) it is the convolution."""

    def __init__(self, c_in: int, c_out: int, bias: bool = True):
        super().__init__(c_in, c_out, kernel_size=1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.device.type != "cpu" or x.dtype != self.weight.dtype:
            return super().forward(x)
        b, c = x.shape[:2]
        weight = self.weight.view(1, self.out_channels, c).expand(b, -1, -1)
        flat = x.reshape(b, c, -1)
        if self.bias is None:
            y = torch.bmm(weight, flat)
        else:
            y = torch.baddbmm(self.bias.view(1, -1, 1), weight, flat)
        return y.view(b, self.out_channels, *x.shape[2:])


class Conv3d(nn.Conv3d):
    """``nn.Conv3d`` (same parameters and state-dict keys) that on the CPU, in float32 and without
    autograd, calls oneDNN (``aten.mkldnn_convolution``) directly.

    PyTorch's dispatch judges a 3-D input's size by its batch, channels and first two spatial axes
    only, and sends one sample of up to 20,480 such elements to its slow unfold-and-multiply path:
    1 -> 8 channels at 96^3 took 22 ms that way and 5 ms through oneDNN, 32 -> 32 at 24^3 15 ms
    and 4 ms (2-core CPU, 2026-11-24). Elsewhere it is the convolution; ``F.conv3d`` is its twin
    in the tests."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not _onednn_fits(x, self.weight) or self.padding_mode != "zeros" or isinstance(self.padding, str):
            return super().forward(x)
        return torch.ops.aten.mkldnn_convolution(x, self.weight, self.bias, list(self.padding),
                                                 list(self.stride), list(self.dilation), self.groups)


def _onednn_fits(x: torch.Tensor, weight: torch.Tensor) -> bool:
    return (x.device.type == "cpu" and x.dtype == weight.dtype == torch.float32 and x.dim() == 5
            and not torch.compiler.is_compiling()  # torch.compile has its own choice of kernels
            and not (torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad))
            and torch.backends.mkldnn.is_available()
            and (x.is_contiguous() or x.is_contiguous(memory_format=torch.channels_last_3d)))


def conv3(c_in: int, c_out: int) -> nn.Conv3d:
    return Conv3d(c_in, c_out, kernel_size=3, padding=1, bias=True)


def conv_gn_relu_x2(c_in: int, c_out: int) -> nn.Sequential:
    """Conv3 -> GN -> ReLU -> Conv3 -> GN -> ReLU (keys 0, 1, 3, 4)."""
    return nn.Sequential(
        conv3(c_in, c_out), GroupNorm(GN_GROUPS, c_out), nn.ReLU(inplace=True),
        conv3(c_out, c_out), GroupNorm(GN_GROUPS, c_out), nn.ReLU(inplace=True),
    )


class ResConvBlock3D(nn.Module):
    """``conv(x) + identity(x)``; identity is a 1x1x1 conv even when channels match (authors)."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv = conv_gn_relu_x2(c_in, c_out)
        self.identity = PointwiseConv3d(c_in, c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x) + self.identity(x)


class ConvBlock3D(nn.Module):
    """(Conv3 -> GN -> ReLU) x 2 without a residual path (the bottleneck's ``compress``)."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv = conv_gn_relu_x2(c_in, c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class DownBlock3D(nn.Module):
    """MaxPool(2) then ResConvBlock3D (keys ``down.1.*``)."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.down = nn.Sequential(nn.MaxPool3d(2), ResConvBlock3D(c_in, c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(x)


class NearestUp2(nn.Module):
    """Nearest upsampling by 2 along the three spatial axes of (B, C, D, H, W): the values of
    ``nn.Upsample(scale_factor=2, mode="nearest")`` (each voxel repeated 2 x 2 x 2), which it calls,
    except that a channels_last_3d input gives a channels_last_3d output, written in that order.

    torch.compile decomposes the upsampling into an index gather computed in channels-first order
    and then copied into the input's layout. On channels_last_3d tensors that copy writes strided:
    the compiled training step's kernel holding it took 2.88 ms a patch against 0.36 for its
    channels-first twin (one H100, batch 8, benchmarks/results/2026-12-07-h100-s23/). Here a
    channels_last_3d tensor is repeated as the (B, D, H, W, C) array it is in memory (an expand and
    a reshape), so each output row of channels is written whole; its gradient is a sum over each
    2 x 2 x 2 block instead of a scatter.

    ``channels_last`` picks the output's layout; None follows the input's. Under torch.compile the
    input's strides are those of a fake tensor, which need not be the eager ones (a convolution or a
    GroupNorm traced on channels_last_3d data may report contiguous strides), so UpBlock3D passes
    the layout of its convolution's weights, which are real parameters."""

    def forward(self, x: torch.Tensor, channels_last: bool | None = None) -> torch.Tensor:
        if channels_last is None:
            channels_last = is_channels_last_3d(x)
        if x.dim() == 5 and channels_last:
            b, c, d, h, w = x.shape
            rows = x.permute(0, 2, 3, 4, 1)[:, :, None, :, None, :, None, :].expand(b, d, 2, h, 2, w, 2, c)
            return rows.reshape(b, 2 * d, 2 * h, 2 * w, c).permute(0, 4, 1, 2, 3)
        return F.interpolate(x, scale_factor=2.0, mode="nearest")


class UpBlock3D(nn.Module):
    """Nearest upsample x2 -> Conv3 -> GN -> ReLU (keys ``up.0.1``, ``up.1.0``)."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.up = nn.Sequential(
            nn.Sequential(NearestUp2(), conv3(c_in, c_out)),
            nn.Sequential(GroupNorm(GN_GROUPS, c_out), nn.ReLU(inplace=True)),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        (upsample, conv), norm = self.up
        # the convolution's layout, not x's strides: see NearestUp2
        return norm(conv(upsample(x, channels_last=is_channels_last_3d(conv.weight))))


def is_channels_last_3d(t: torch.Tensor) -> bool:
    """Whether ``t`` is laid out channels_last_3d and not also contiguous (one channel, say)."""
    return t.dim() == 5 and t.is_contiguous(memory_format=torch.channels_last_3d) and not t.is_contiguous()


class DropPath(nn.Module):
    """Stochastic depth per sample; identity when ``p == 0`` or in eval mode."""

    def __init__(self, p: float = 0.0):
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"drop_path: expected a probability in [0, 1), got {p!r}")
        self.p = float(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.p == 0.0 or not self.training:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep)
        return x * mask / keep

    def extra_repr(self) -> str:
        return f"p={self.p}"


class Mlp(nn.Module):
    """Linear -> GELU (exact) -> Dropout -> Linear -> Dropout (keys ``net.0``, ``net.3``)."""

    def __init__(self, dim: int, hidden: int, dropout: float = 0.0):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(dropout),
            nn.Linear(hidden, dim), nn.Dropout(dropout),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def set_fused_groupnorm(module: nn.Module, enabled: bool) -> int:
    """Switch every :class:`GroupNorm` under ``module`` to the fused path; returns how many."""
    n = 0
    for m in module.modules():
        if isinstance(m, GroupNorm):
            m.fused = bool(enabled)
            n += 1
    return n


def check_channels(name: str, value: int, multiple: int = GN_GROUPS) -> None:
    if int(value) <= 0 or int(value) % multiple:
        raise ValueError(f"{name}: expected a positive multiple of {multiple}, got {value!r}")


__all__ = [
    "GroupNorm", "group_norm_fused", "Conv3d", "ResConvBlock3D", "ConvBlock3D", "DownBlock3D", "NearestUp2",
    "UpBlock3D", "DropPath", "Mlp", "set_fused_groupnorm", "check_channels",
]
