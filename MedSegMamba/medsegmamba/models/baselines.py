"""The paper's baselines: MedSegMamba's encoder/decoder with another bottleneck.

* ``SegMambaBot``: SegMamba's tri-oriented Mamba (forward, reversed, inter-slice, summed).
* ``TABSurfer``: Transformer bottleneck (learned positional encoding, 8 layers, 16 heads).
"""

from __future__ import annotations

from .medsegmamba import PAPER_CHANNELS, MedSegMamba


class SegMambaBot(MedSegMamba):
    def __init__(self, channels=PAPER_CHANNELS, num_blocks: int = 9, d_state: int = 64,
                 num_classes: int = 32, **kwargs):
        kwargs.pop("bottleneck", None)
        super().__init__(channels, num_blocks, d_state, num_classes, bottleneck="trimamba", **kwargs)


class TABSurfer(MedSegMamba):
    def __init__(self, channels=PAPER_CHANNELS, num_blocks: int = 8, d_state: int = 1,
                 num_classes: int = 32, num_heads: int = 16, **kwargs):
        kwargs.pop("bottleneck", None)
        super().__init__(channels, num_blocks, d_state, num_classes, bottleneck="transformer",
                         num_heads=num_heads, **kwargs)


BASELINES = {"segmambabot": SegMambaBot, "tabsurfer": TABSurfer}
