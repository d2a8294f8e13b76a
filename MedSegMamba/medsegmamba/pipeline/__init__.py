"""From a T1 file to a label map on its own grid: conform, tile, predict, aggregate, back to native.

`segment.Segmenter` / `segment.segment` run the whole path; each step is a function of its own
module (conform, patches, aggregate, hippocampus). Importing this package does not import torch.
"""

from .segment import SegmentOptions, Segmentation, Segmenter

# (the function segment.segment is not re-exported: it would hide the module of the same name)
__all__ = ["SegmentOptions", "Segmentation", "Segmenter"]
