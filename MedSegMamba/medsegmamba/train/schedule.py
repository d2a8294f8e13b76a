"""Learning rate as a pure function of the iteration: linear warm-up, then cosine annealing
with warm restarts (period `t0` iterations, multiplied by `t_mult` after each restart). With
`end` (the run's last iteration), the cycle that would run past it is shortened to finish there,
so that a run of a set length ends annealed instead of stopping at a high learning rate.

With `restart_at`, one fresh cycle starts at that iteration instead: warm-up again, then a
single cosine down to `end`. It is for fine-tuning a trained model on a changed target, whose
regular cycle has already annealed and would leave the new target barely learnt.

A pure function makes resume exact: the iteration is the whole scheduler state.
"""

from __future__ import annotations

import math


def lr_at(it: int, base_lr: float, warmup: int, t0: int, t_mult: float = 1.0,
          min_lr_ratio: float = 0.01, end: int | None = None,
          restart_at: int = 0) -> float:
    if restart_at and it >= restart_at:
        if end is None or end <= restart_at + warmup:
            raise ValueError(f"restart_at {restart_at}: its cycle needs max_iters past the "
                             f"{warmup}-iteration warm-up (above {restart_at + warmup}), got {end}")
        # The same shape as a run from iteration 0 whose single cycle ends at `end`.
        return lr_at(it - restart_at, base_lr, warmup, end - restart_at - warmup,
                     min_lr_ratio=min_lr_ratio)
    if it < warmup:
        return base_lr * (it + 1) / warmup
    t, period = it - warmup, t0
    while t >= period:
        t -= period
        period = max(1, int(round(period * t_mult)))
    if end is not None and it < end < it - t + period:
        period = end - (it - t)
    lo = base_lr * min_lr_ratio
    return lo + 0.5 * (base_lr - lo) * (1 + math.cos(math.pi * t / period))
