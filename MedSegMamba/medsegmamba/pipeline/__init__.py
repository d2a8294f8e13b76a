"""From a T1 file to a label map on its own grid: conform, tile, predict, aggregate, back to native.

`segment.Segmenter` / `segment.segment` run the whole path; each step is a function of its own
module (conform, patches, aggregate, hippocampus). Importing this package does not import torch.
"""

from .segment import SegmentOptions, Segmentation, Segmenter, segment

__all__ = ["SegmentOptions", "Segmentation", "Segmenter", "segment"]
