"""MedSegMamba: 3-D CNN encoder/decoder with a VSS3D (8-direction Mamba) bottleneck.

State-dict keys are the authors' (``Conv1``, ``downconv1..3``, ``gn``, ``expand``,
``bottleneck.blocks.{i}``, ``pre_head_ln``, ``compress``, ``Up4..2``, ``Up_conv4..2``, ``Conv_1x1``),
so their checkpoints load with a strict ``load_state_dict``.
"""

from __future__ import annotations

import logging

import torch
import torch.nn.functional as F
from torch import nn

from .bottlenecks import TransformerBottleneck, TriMambaBottleneck
from .layers import (GroupNorm, Conv3d, ConvBlock3D, DownBlock3D, PointwiseConv3d, ResConvBlock3D, UpBlock3D,
                     check_channels, set_fused_groupnorm)
from .ss3d import SS3D, SS3DAuthorsLayout
from .vss3d import VSS3DBottleneck

log = logging.getLogger(__name__)

BOTTLENECKS = ("vss3d", "vss3d-authors", "trimamba", "transformer", "kan-mamba")
DOWNSAMPLING = 8  # three MaxPool(2)
PAPER_CHANNELS = (1, 32, 64, 128, 256, 1024)


def check_architecture(channels, num_blocks, d_state, num_classes, patch_size=96) -> None:
    """Raise ValueError naming the argument when the network cannot be built."""
    channels = tuple(channels)
    if len(channels) != 6:
        raise ValueError(f"channels: expected 6 sizes (in, c1, c2, c3, c4, bottleneck), got {channels}")
    for i in range(1, 5):
        check_channels(f"channels[{i}]", channels[i])
    for i in (2, 3, 4):
        if channels[i] != 2 * channels[i - 1]:
            raise ValueError(f"channels: each of c2..c4 must be twice the previous one (the decoder "
                             f"concatenates skips), got {channels}")
    if channels[0] <= 0 or channels[5] <= 0:
        raise ValueError(f"channels: input and bottleneck sizes must be positive, got {channels}")
    for name, v in (("num_blocks", num_blocks), ("d_state", d_state), ("num_classes", num_classes)):
        if not isinstance(v, int) or v <= 0:
            raise ValueError(f"{name}: expected a positive int, got {v!r}")
    if patch_size % DOWNSAMPLING:
        raise ValueError(f"patch_size: expected a multiple of {DOWNSAMPLING}, got {patch_size!r}")


class MedSegMamba(nn.Module):
    """The paper network. ``forward`` returns softmax probabilities (B, classes, H, W, D).

    Args:
        channels: (in, c1, c2, c3, c4, bottleneck width); c1..c4 multiples of 8, each twice the last.
        num_blocks, d_state, expand: bottleneck depth, SSM state size and expansion.
        dropout, drop_path: bottleneck regularisation (paper training: 0.1, 0.3).
        bottleneck: "vss3d" (paper), "vss3d-authors" (same maths, authors' slow layout),
            "trimamba" (SegMambaBot), "transformer" (TABSurfer).
        patch_size: input cube edge (96 in the paper; the bottleneck is patch_size / 8).
        scan_impl: passed to :func:`medsegmamba.ops.selective_scan`.
    """

    def __init__(self, channels=PAPER_CHANNELS, num_blocks: int = 9, d_state: int = 64,
                 num_classes: int = 32, expand: int = 1, dropout: float = 0.0,
                 drop_path: float = 0.0, bottleneck: str = "vss3d", patch_size: int = 96,
                 num_heads: int = 16, scan_impl: str | None = None):
        super().__init__()
        check_architecture(channels, num_blocks, d_state, num_classes, patch_size)
        c0, c1, c2, c3, c4, e = channels
        self.channels, self.num_classes, self.patch_size = tuple(channels), num_classes, patch_size
        self.bottleneck_size = size = patch_size // DOWNSAMPLING

        self.Conv1 = ResConvBlock3D(c0, c1)
        self.downconv1 = DownBlock3D(c1, c2)
        self.downconv2 = DownBlock3D(c2, c3)
        self.downconv3 = DownBlock3D(c3, c4)
        self.gn = GroupNorm(8, c4)
        self.expand = Conv3d(c4, e, kernel_size=3, padding=1)
        self.bottleneck = make_bottleneck(bottleneck, e, num_blocks, d_state, size, expand=expand,
                                          dropout=dropout, drop_path=drop_path,
                                          num_heads=num_heads, scan_impl=scan_impl)
        self.pre_head_ln = nn.LayerNorm(e, eps=1e-5)
        self.compress = ConvBlock3D(e, c4)
        self.Up4, self.Up_conv4 = UpBlock3D(c4, c3), ResConvBlock3D(c4, c3)
        self.Up3, self.Up_conv3 = UpBlock3D(c3, c2), ResConvBlock3D(c3, c2)
        self.Up2, self.Up_conv2 = UpBlock3D(c2, c1), ResConvBlock3D(c2, c2)
        self.Conv_1x1 = PointwiseConv3d(c2, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Softmax probabilities over classes (dim 1), like the authors' model."""
        return torch.softmax(self.forward_logits(x), dim=1)

    def forward_logits(self, x: torch.Tensor) -> torch.Tensor:
        return self._run(x, None)

    def forward_features(self, x: torch.Tensor):
        """(logits, {enc1..enc4, bottleneck, dec4, dec3, dec2}) -- channels-first feature maps.

        ``bottleneck`` is the ``compress`` output (c4 channels at patch_size / 8)."""
        feats: dict[str, torch.Tensor] = {}
        return self._run(x, feats), feats

    def _run(self, x: torch.Tensor, feats) -> torch.Tensor:
        self._check_input(x)
        x1 = self.Conv1(x)
        x2 = self.downconv1(x1)
        x3 = self.downconv2(x2)
        x4 = self.downconv3(x3)
        b = self.expand(F.relu(self.gn(x4)))
        # channels-last for the bottleneck; free when b is in channels_last_3d memory
        b = self.pre_head_ln(self.bottleneck(b.permute(0, 2, 3, 4, 1)))
        b = self.compress(b.permute(0, 4, 1, 2, 3))
        d4 = self.Up_conv4(torch.cat((x3, self.Up4(b)), dim=1))
        d3 = self.Up_conv3(torch.cat((x2, self.Up3(d4)), dim=1))
        d2 = self.Up_conv2(torch.cat((x1, self.Up2(d3)), dim=1))
        if feats is not None:
            feats.update(enc1=x1, enc2=x2, enc3=x3, enc4=x4, bottleneck=b, dec4=d4, dec3=d3, dec2=d2)
        return self.Conv_1x1(d2)

    def _check_input(self, x: torch.Tensor) -> None:
        p, c = self.patch_size, self.channels[0]
        if x.dim() != 5 or x.shape[1] != c or tuple(x.shape[2:]) != (p, p, p):
            raise ValueError(f"input: expected (B, {c}, {p}, {p}, {p}), got {tuple(x.shape)}")

    def set_fused_groupnorm(self, enabled: bool = True) -> "MedSegMamba":
        """Use the float32-statistics GroupNorm path (faster under bf16 autocast on GPU)."""
        log.debug("fused GroupNorm %s on %d layers", enabled, set_fused_groupnorm(self, enabled))
        return self

    def num_float_params(self) -> int:
        return sum(p.numel() for p in self.parameters() if p.is_floating_point())


def make_bottleneck(kind: str, dim: int, num_blocks: int, d_state: int, size: int, *,
                    expand: int = 1, dropout: float = 0.0, drop_path: float = 0.0,
                    num_heads: int = 16, scan_impl: str | None = None) -> nn.Module:
    """The bottleneck named ``kind`` (see :data:`BOTTLENECKS`); (B, S, S, S, C) in and out."""
    if kind in ("vss3d", "vss3d-authors"):
        cls = SS3D if kind == "vss3d" else SS3DAuthorsLayout
        return VSS3DBottleneck(dim, num_blocks, d_state, expand, dropout, drop_path, size,
                               scan_impl, cls)
    if kind == "trimamba":
        return TriMambaBottleneck(dim, num_blocks, d_state, size, dropout, drop_path, scan_impl)
    if kind == "transformer":
        return TransformerBottleneck(dim, num_blocks, size, num_heads, dropout, drop_path)
    if kind == "kan-mamba":
        from .kan_mamba import KANMambaBottleneck

        return KANMambaBottleneck(dim, num_blocks, d_state, size, dropout=dropout,
                                  drop_path=drop_path, scan_impl=scan_impl, expand=expand)
    raise ValueError(f"bottleneck: expected one of {BOTTLENECKS}, got {kind!r}")
