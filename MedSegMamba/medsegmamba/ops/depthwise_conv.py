"""SS3D's depthwise 3x3x3 convolution followed by SiLU, routed to fused Triton kernels on CUDA.

`depthwise_conv3d_silu(x, conv)` is `F.silu(conv(x))`. On a CUDA tensor it runs
ops/triton/depthwise_conv.py's kernels (channels-last, float32 accumulation, no cuDNN layout
transform; forward and backward), unless $MEDSEGMAMBA_DWCONV is "torch". On an H100 they took the
paper network's nine depthwise convolutions from 1.32 to 0.11 ms a patch in inference and its
eager training step from 109.3 to 105.8 ms a patch (benchmarks/results/2026-12-07-h100-s18/).
Everywhere else it is the PyTorch convolution itself.
"""

from __future__ import annotations

import logging
import os

import torch
import torch.nn.functional as F
from torch import nn

log = logging.getLogger(__name__)

ENV_VAR = "MEDSEGMAMBA_DWCONV"
ROUTES = ("auto", "torch")


def dwconv_route() -> str:
    """$MEDSEGMAMBA_DWCONV: "auto" (the default: the Triton kernels where they apply) or "torch"."""
    route = os.environ.get(ENV_VAR, "auto") or "auto"
    if route not in ROUTES:
        raise ValueError(f"depthwise_conv3d_silu: ${ENV_VAR} must be one of {', '.join(ROUTES)}, got {route!r}")
    return route


def _fused_applies(conv: nn.Conv3d, x: torch.Tensor) -> bool:
    c = conv.in_channels
    return (x.is_cuda and x.dim() == 5 and conv.groups == c == conv.out_channels and conv.kernel_size == (3, 3, 3)
            and conv.padding == (1, 1, 1) and conv.stride == (1, 1, 1) and conv.dilation == (1, 1, 1)
            and conv.padding_mode == "zeros")


def _triton_kernel():
    try:
        from .triton.depthwise_conv import dwconv3_silu_triton
    except ImportError as exc:
        log.debug("Triton depthwise convolution unavailable: %s", exc)
        return None
    return dwconv3_silu_triton


def depthwise_conv3d_silu(x: torch.Tensor, conv: nn.Conv3d) -> torch.Tensor:
    """F.silu(conv(x)) for a depthwise 3x3x3 convolution with padding 1 (SS3D's)."""
    if dwconv_route() == "auto" and _fused_applies(conv, x):
        kernel = _triton_kernel()
        if kernel is not None:
            return kernel(x, conv.weight, conv.bias)
    return F.silu(conv(x))
