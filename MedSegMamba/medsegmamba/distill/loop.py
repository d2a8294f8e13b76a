"""A small training loop for distillation arms: one student, an optional frozen teacher, optional
ReCo-KD and/or self-distillation modules, on batches from any iterator.

It deliberately knows nothing about where batches come from (the SynthSeg-style generator of
:mod:`medsegmamba.train`, or a test's tensors) nor which segmentation loss is used: both are
arguments, so the distillation arms share exactly the training recipe of the plain arm.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from typing import Callable, Iterator

import torch
from torch import nn

log = logging.getLogger(__name__)


@dataclass
class LoopOptions:
    steps: int = 1000
    lr: float = 1e-3
    weight_decay: float = 1e-4
    lr_warmup: int = 20  # steps of linear LR warm-up, then cosine to 5% of lr
    grad_clip: float = 1.0
    amp: bool = True  # bf16 autocast on CUDA (ignored on CPU)
    log_every: int = 25
    max_seconds: float = math.inf  # stop early (and say so) when the wall clock runs out
    history: list = field(default_factory=list)


def _lr_factor(step: int, total: int, warm: int) -> float:
    if step < warm:
        return (step + 1) / warm
    progress = (step - warm) / max(1, total - warm)
    return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def train_student(student: nn.Module, batches: Iterator, seg_loss: Callable, options: LoopOptions,
                  teacher: nn.Module | None = None, reco: nn.Module | None = None,
                  self_distill: nn.Module | None = None, start_step: int = 0,
                  optimizer: torch.optim.Optimizer | None = None) -> dict:
    """Train ``student`` in place for ``options.steps`` steps; returns a summary dict.

    Each batch is ``(image (B, 1, P, P, P), target (B, P, P, P) int)`` on the student's device.
    ``reco`` needs ``teacher`` (ReCo-KD); ``self_distill`` needs neither. The teacher is frozen
    (eval mode, no gradient). ``start_step`` continues the KD warm-up and the LR schedule of an
    earlier run.
    """
    if reco is not None and teacher is None:
        raise ValueError("reco: ReCo-KD needs a teacher")
    device = next(student.parameters()).device
    extra = [m for m in (reco, self_distill) if m is not None]
    params = [p for m in [student, *extra] for p in m.parameters() if p.requires_grad]
    opt = optimizer or torch.optim.AdamW(params, lr=options.lr, weight_decay=options.weight_decay)
    if teacher is not None:
        teacher.eval().requires_grad_(False)
    student.train()
    for m in extra:
        m.train()
    use_amp = options.amp and device.type == "cuda"
    total = start_step + options.steps
    t0, done, stopped_early = time.perf_counter(), 0, False
    # a resumed run starts a fresh optimizer: it warms up again, or its first, unscaled Adam steps
    # would jolt the weights
    fresh = optimizer is None and start_step > 0 and options.lr_warmup > 0
    for i in range(options.steps):
        step = start_step + i
        if time.perf_counter() - t0 > options.max_seconds:
            stopped_early = True
            log.warning("stopping at step %d: time budget of %.0f s spent", step, options.max_seconds)
            break
        rewarm = min(1.0, (i + 1) / options.lr_warmup) if fresh else 1.0
        for g in opt.param_groups:
            g["lr"] = options.lr * _lr_factor(step, total, options.lr_warmup) * rewarm
        image, target = next(batches)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
            need_feats = reco is not None or self_distill is not None
            if need_feats:
                logits, feats = student.forward_features(image)
            else:
                logits, feats = student.forward_logits(image), None
            loss = seg_loss(logits.float(), target)
            terms = {"seg": float(loss.detach())}
            if reco is not None:
                with torch.no_grad():
                    t_logits, t_feats = teacher.forward_features(image)
                kd, kd_terms = reco(logits, feats, t_logits, t_feats, target, step)
                loss, terms = loss + kd, {**terms, **kd_terms}
            if self_distill is not None:
                sd, sd_terms = self_distill(logits, feats, target, step)
                loss, terms = loss + sd, {**terms, **sd_terms}
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if options.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(params, options.grad_clip)
        opt.step()
        done += 1
        if step % options.log_every == 0 or i == options.steps - 1:
            row = {"step": step, "loss": float(loss.detach()), "lr": opt.param_groups[0]["lr"], **terms,
                   "seconds": round(time.perf_counter() - t0, 2)}
            options.history.append(row)
            log.info("step %d %s", step, " ".join(f"{k}={v:.4g}" for k, v in row.items()
                                                  if k != "step"))
    seconds = time.perf_counter() - t0
    return {"steps": done, "last_step": start_step + done, "seconds": round(seconds, 2),
            "stopped_early": stopped_early, "history": options.history, "optimizer": opt}


__all__ = ["LoopOptions", "train_student"]
