"""Multi-scale self-distillation (MSD-KMamba, Zhang et al. 2025), as a training option.

Auxiliary 1x1x1 heads on the coarser decoder maps (``dec4`` at patch/4, ``dec3`` at patch/2) predict
the classes at their own scale and learn from

* the ground truth, average-pooled to their scale (soft targets, cross-entropy);
* the network's own finest output, softened by a temperature and average-pooled to their scale
  (KL, detached: the finest head is the teacher and gets no gradient from this term);
* feature hints: each coarse decoder map, through a 1x1x1 adapter, matches the next deeper
  (finer) decoder map pooled to its size -- ``dec4 <- dec3``, ``dec3 <- dec2`` (detached).

The paper notes the method is sensitive to these weights and that a poor teacher signal
propagates; so each weight is configurable and the two self-KD terms ramp up linearly
(``warmup_steps``), letting the finest head become a useful teacher first. Heads and adapters are
training-only: the deployed network is unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .reco_kd import kd_loss, warmup

DEFAULT_AUX_SCALES = ("dec4", "dec3")
FINEST = "dec2"
HINT_SOURCE = {"dec4": "dec3", "dec3": "dec2"}


@dataclass
class SelfDistillConfig:
    w_aux_seg: float = 0.3
    w_self_kd: float = 0.3
    w_hint: float = 0.1
    temperature: float = 2.0
    warmup_steps: int = 200
    aux_scales: tuple[str, ...] = DEFAULT_AUX_SCALES

    def check(self) -> "SelfDistillConfig":
        for name in ("w_aux_seg", "w_self_kd", "w_hint"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}: expected a weight >= 0, got {getattr(self, name)!r}")
        bad = [s for s in self.aux_scales if s not in HINT_SOURCE]
        if bad:
            raise ValueError(f"aux_scales: expected names among {sorted(HINT_SOURCE)}, got {bad}")
        return self


def soft_ce(logits: torch.Tensor, probs: torch.Tensor) -> torch.Tensor:
    """Cross-entropy against soft targets (B, K, *S), mean over voxels."""
    return -(probs * F.log_softmax(logits.float(), dim=1)).sum(1).mean()


class SelfDistillation(nn.Module):
    """Aux heads + hint adapters; ``forward(logits, feats, target, step)`` -> (loss, terms)."""

    def __init__(self, widths: dict[str, int], num_classes: int,
                 config: SelfDistillConfig | None = None):
        super().__init__()
        self.config = (config or SelfDistillConfig()).check()
        self.num_classes = num_classes
        scales = self.config.aux_scales
        missing = [s for s in scales + tuple(HINT_SOURCE[s] for s in scales) if s not in widths]
        if missing:
            raise ValueError(f"self-distillation needs decoder maps {missing}; the model gives "
                             f"{sorted(widths)}")
        self.heads = nn.ModuleDict({s: nn.Conv3d(widths[s], num_classes, 1) for s in scales})
        self.hints = nn.ModuleDict({s: nn.Conv3d(widths[s], widths[HINT_SOURCE[s]], 1)
                                    for s in scales})

    def forward(self, logits, feats, target, step: int = 0):
        cfg = self.config
        ramp = warmup(step, cfg.warmup_steps)
        onehot = F.one_hot(target.long(), self.num_classes).permute(0, 4, 1, 2, 3).float()
        t = float(cfg.temperature)
        soft_finest = torch.softmax(logits.detach().float() / t, dim=1)
        seg, skd, hint = [], [], []
        for s in cfg.aux_scales:
            f = feats[s]
            size = tuple(f.shape[2:])
            aux = self.heads[s](f)
            seg.append(soft_ce(aux, F.adaptive_avg_pool3d(onehot, size)))
            # pooled softened probabilities back to logits, so kd_loss applies its own 1/T.
            teacher = F.adaptive_avg_pool3d(soft_finest, size).clamp_min(1e-8).log() * t
            skd.append(kd_loss(aux, teacher, t))
            src = feats[HINT_SOURCE[s]].detach()
            src = F.adaptive_avg_pool3d(src.float(), size)
            scale = src.pow(2).mean(dim=(1, 2, 3, 4), keepdim=True).sqrt().clamp_min(1e-6)
            hint.append(F.mse_loss(self.hints[s](f).float() / scale, src / scale))
        terms = {"aux_seg": torch.stack(seg).mean(), "self_kd": torch.stack(skd).mean(),
                 "hint": torch.stack(hint).mean()}
        loss = (cfg.w_aux_seg * terms["aux_seg"]
                + ramp * (cfg.w_self_kd * terms["self_kd"] + cfg.w_hint * terms["hint"]))
        return loss, {k: float(v.detach()) for k, v in terms.items()}


__all__ = ["SelfDistillConfig", "SelfDistillation", "soft_ce", "DEFAULT_AUX_SCALES"]
