"""ReCo-KD losses (Lan et al. 2026): MS-SARD, MS-CA and softened-logit KD, backbone-agnostic.

All feature maps are channels-first ``(B, C, H, W, D)``; student and teacher maps at one scale
have the same spatial size (a student keeps the teacher's layout and scales only widths).

* MS-SARD (structure-aware region distillation): at each scale a 1x1x1 adapter maps the student's
  features to the teacher's width; the squared error is averaged inside each class's mask -- the
  one-hot ground truth average-pooled to that scale, a soft mask that keeps a structure even when
  it is smaller than one coarse voxel -- and each class's term is divided by its own mask mass,
  so a 500-voxel accumbens counts as much as the background.
* MS-CA (context alignment): at each scale both maps are pooled to ``pool^3`` positions, each
  position's channel vector is L2-normalised, and the student's ``(P, P)`` cosine-affinity matrix
  is pulled to the teacher's (mean squared error). No adapter: the matrix does not depend on C.
* KD: ``T^2 * KL(softmax(t / T) || softmax(s / T))``, averaged over voxels.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

DEFAULT_SARD_SCALES = ("enc2", "enc3", "bottleneck", "dec4", "dec3")
DEFAULT_CA_SCALES = ("enc4", "bottleneck", "dec4")


def class_masks(target: torch.Tensor, num_classes: int, size) -> torch.Tensor:
    """Soft class masks (B, K, *size): the one-hot of ``target`` (B, H, W, D) area-averaged to ``size``.

    Each voxel's K values sum to 1 (the fraction of the coarse voxel each class fills)."""
    if target.dim() != 4:
        raise ValueError(f"target: expected (B, H, W, D) class indices, got shape {tuple(target.shape)}")
    onehot = F.one_hot(target.long(), num_classes).permute(0, 4, 1, 2, 3).float()
    if tuple(onehot.shape[2:]) == tuple(size):
        return onehot
    return F.adaptive_avg_pool3d(onehot, tuple(size))


def _rms_scale(t: torch.Tensor) -> torch.Tensor:
    """Per-sample RMS of the teacher map (B, 1, 1, 1, 1), detached: puts every scale near O(1)."""
    return t.detach().pow(2).mean(dim=(1, 2, 3, 4), keepdim=True).sqrt().clamp_min(1e-6)


def sard_loss(student: torch.Tensor, teacher: torch.Tensor, masks: torch.Tensor,
              include_background: bool = True, eps: float = 1e-6) -> torch.Tensor:
    """Class-normalised masked feature MSE at one scale.

    student, teacher: (B, C, *S) (student already through its adapter); masks: (B, K, *S).
    Returns the mean over (sample, class present) of ``sum(m_k * e) / sum(m_k)``, where ``e`` is the
    per-voxel squared error averaged over channels, both maps divided by the teacher's RMS.
    """
    if student.shape != teacher.shape:
        raise ValueError(f"sard_loss: student {tuple(student.shape)} and teacher "
                         f"{tuple(teacher.shape)} features must have the same shape (use an adapter)")
    scale = _rms_scale(teacher)
    err = ((student.float() - teacher.detach().float()) / scale).pow(2).mean(dim=1)  # (B, *S)
    if not include_background:
        masks = masks[:, 1:]
    mass = masks.flatten(2).sum(-1)  # (B, K)
    per_class = (masks.flatten(2) * err.flatten(1).unsqueeze(1)).sum(-1) / (mass + eps)
    present = (mass > eps).float()
    return (per_class * present).sum() / present.sum().clamp_min(1.0)


def affinity(features: torch.Tensor, pool: int) -> torch.Tensor:
    """Cosine similarity between the ``pool^3`` pooled positions of ``features``: (B, P, P)."""
    f = F.adaptive_avg_pool3d(features.float(), pool).flatten(2)  # (B, C, P)
    f = F.normalize(f, dim=1, eps=1e-6)
    return f.transpose(1, 2) @ f


def ca_loss(student: torch.Tensor, teacher: torch.Tensor, pool: int = 6) -> torch.Tensor:
    """MSE between the student's and teacher's affinity matrices at one scale (any widths)."""
    if student.shape[0] != teacher.shape[0] or student.shape[2:] != teacher.shape[2:]:
        raise ValueError(f"ca_loss: expected the same batch and spatial size, got "
                         f"{tuple(student.shape)} and {tuple(teacher.shape)}")
    pool = min(pool, *student.shape[2:])
    return F.mse_loss(affinity(student, pool), affinity(teacher.detach(), pool))


def kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
            temperature: float = 2.0) -> torch.Tensor:
    """Softened-logit KD over the class dim (1); mean over voxels, times ``T^2`` (Hinton)."""
    t = float(temperature)
    if t <= 0:
        raise ValueError(f"temperature: expected > 0, got {temperature!r}")
    log_p_s = F.log_softmax(student_logits.float() / t, dim=1)
    log_p_t = F.log_softmax(teacher_logits.detach().float() / t, dim=1)
    kl = (log_p_t.exp() * (log_p_t - log_p_s)).sum(dim=1)
    return kl.mean() * t * t


def warmup(step: int, steps: int) -> float:
    """Linear ramp 0 -> 1 over ``steps`` steps (1 from the start when ``steps`` is 0)."""
    if steps <= 0:
        return 1.0
    return min(1.0, max(0.0, step / float(steps)))


@dataclass
class ReCoKDConfig:
    """Weights and scales of the ReCo-KD terms (segmentation loss weight is 1)."""

    w_sard: float = 1.0
    w_ca: float = 1.0
    w_kd: float = 0.5
    temperature: float = 2.0
    warmup_steps: int = 100
    sard_scales: tuple[str, ...] = DEFAULT_SARD_SCALES
    ca_scales: tuple[str, ...] = DEFAULT_CA_SCALES
    ca_pool: int = 6
    include_background: bool = True
    extra: dict = field(default_factory=dict)

    def check(self) -> "ReCoKDConfig":
        for name in ("w_sard", "w_ca", "w_kd"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}: expected a weight >= 0, got {getattr(self, name)!r}")
        if self.warmup_steps < 0 or self.ca_pool < 1:
            raise ValueError(f"warmup_steps >= 0 and ca_pool >= 1 expected, got "
                             f"{self.warmup_steps!r}, {self.ca_pool!r}")
        return self


class ReCoKD(nn.Module):
    """The distillation terms plus the 1x1x1 adapters (trainable, training-only).

    ``forward(s_logits, s_feats, t_logits, t_feats, target, step)`` -> (total KD loss, terms dict);
    the caller adds the segmentation loss. Teacher tensors are detached here.
    """

    def __init__(self, student_widths: dict[str, int], teacher_widths: dict[str, int],
                 num_classes: int, config: ReCoKDConfig | None = None):
        super().__init__()
        self.config = (config or ReCoKDConfig()).check()
        self.num_classes = num_classes
        for name in set(self.config.sard_scales) | set(self.config.ca_scales):
            if name not in student_widths or name not in teacher_widths:
                raise ValueError(f"scale {name!r}: not among the feature maps "
                                 f"{sorted(set(student_widths) & set(teacher_widths))}")
        self.adapters = nn.ModuleDict({
            name: nn.Conv3d(student_widths[name], teacher_widths[name], kernel_size=1)
            for name in self.config.sard_scales})

    def forward(self, s_logits, s_feats, t_logits, t_feats, target, step: int = 0):
        cfg, terms = self.config, {}
        ramp = warmup(step, cfg.warmup_steps)
        zero = s_logits.new_zeros((), dtype=torch.float32)
        if cfg.w_sard > 0 and cfg.sard_scales:
            parts = []
            for name in cfg.sard_scales:
                s = self.adapters[name](s_feats[name])
                masks = class_masks(target, self.num_classes, s.shape[2:])
                parts.append(sard_loss(s, t_feats[name], masks, cfg.include_background))
            terms["sard"] = torch.stack(parts).mean()
        if cfg.w_ca > 0 and cfg.ca_scales:
            terms["ca"] = torch.stack([ca_loss(s_feats[n], t_feats[n], cfg.ca_pool)
                                       for n in cfg.ca_scales]).mean()
        if cfg.w_kd > 0:
            terms["kd"] = kd_loss(s_logits, t_logits, cfg.temperature)
        total = zero + sum(getattr(cfg, "w_" + k) * v for k, v in terms.items())
        return ramp * total, {k: float(v.detach()) for k, v in terms.items()}


def feature_widths(model, patch_size: int | None = None, device="cpu") -> dict[str, int]:
    """Channel count of each map in ``model.forward_features`` (one tiny forward, no grad)."""
    p = patch_size or getattr(model, "patch_size", 96)
    c_in = getattr(model, "channels", (1,))[0]
    was_training = model.training
    model.eval()
    with torch.no_grad():
        _, feats = model.forward_features(torch.zeros(1, c_in, p, p, p, device=device))
    model.train(was_training)
    return {k: int(v.shape[1]) for k, v in feats.items()}


__all__ = ["class_masks", "sard_loss", "affinity", "ca_loss", "kd_loss", "warmup", "ReCoKDConfig",
           "ReCoKD", "feature_widths", "DEFAULT_SARD_SCALES", "DEFAULT_CA_SCALES"]
