"""Hippocampal subfields: one pass of a 25-class model on a 96^3 box around labels 17 and 53."""

from __future__ import annotations

import logging

import numpy as np

from ..errors import ModelError
from ..labels import HIPPOCAMPAL_SUBFIELDS, HIPPOCAMPUS_LABELS, class_to_label

log = logging.getLogger(__name__)

BOX = 96


def hippocampus_box(labels, box: int = BOX) -> tuple[int, int, int] | None:
    """First voxel of the box centred on the bounding box of labels 17/53 (kept inside the volume).

    `labels`: conformed aseg labels, numpy or torch; None when neither hippocampus is present.
    """
    mask = (labels == HIPPOCAMPUS_LABELS[0]) | (labels == HIPPOCAMPUS_LABELS[1])
    found = mask.nonzero()
    if isinstance(found, tuple):
        if found[0].size == 0:
            return None
        low = [int(f.min()) for f in found]
        high = [int(f.max()) for f in found]
    else:
        if found.shape[0] == 0:
            return None
        low, high = found.min(0).values.tolist(), found.max(0).values.tolist()
    return tuple(int(np.clip((lo + hi + 1) // 2 - box // 2, 0, n - box))
                 for lo, hi, n in zip(low, high, labels.shape))


def segment_subfields(model, image, labels, box: int = BOX):
    """Subfield label map (same shape as `labels`, torch int32) from the conformed image (torch, [0,1]).

    Voxels outside the box are 0. The box size is the model's patch size (96).
    """
    import torch

    out = torch.zeros(labels.shape, dtype=torch.int32, device=labels.device)
    origin = hippocampus_box(labels, box)
    if origin is None:
        log.warning("no hippocampus (labels 17, 53) found: subfields skipped")
        return out
    a, b, c = origin
    device = next(model.parameters()).device
    patch = image[a:a + box, b:b + box, c:c + box].to(device)
    autocast = (torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda"
                else torch.autocast("cpu", enabled=False))
    with torch.inference_mode(), autocast:
        probabilities = model(patch[None, None].float())
    if probabilities.shape[1] != len(HIPPOCAMPAL_SUBFIELDS):
        raise ModelError(f"subfield model gives {probabilities.shape[1]} classes, "
                         f"expected {len(HIPPOCAMPAL_SUBFIELDS)}")
    lut = torch.as_tensor(class_to_label(HIPPOCAMPAL_SUBFIELDS), device=device)
    out[a:a + box, b:b + box, c:c + box] = lut[probabilities[0].argmax(0)].to(out.device)
    return out
