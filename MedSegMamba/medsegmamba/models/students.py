"""Compact students of MedSegMamba for distillation (issue #5, ReCo-KD): channels scaled by 2^-t.

A student keeps the teacher's layout (same encoder/decoder, same bottleneck kind and depth) and
divides every width by ``2**t``. GroupNorm(8) is used everywhere in the network and needs channel
counts that are multiples of 8, and the decoder needs ``c2..c4 = 2 * previous``; so the encoder
widths c1..c4 are ``max(8, round_up_8(c / 2**t))`` for c1 and doubled from there. For the paper's
widths (32, 64, 128, 256) that means t = 1 -> 16, t = 2 -> 8, and t = 3 -> 8 as well (the paper
would go to 4, which GroupNorm(8) cannot split) -- t = 3 then differs from t = 2 only in the
bottleneck width (1024 / 8 = 128 vs 256), and the SSM state size, which is scaled too (floor 8).
"""

from __future__ import annotations

from dataclasses import dataclass

MIN_WIDTH = 8  # GroupNorm(8) needs a multiple of 8 channels
PAPER_CHANNELS = (1, 32, 64, 128, 256, 1024)
PAPER_D_STATE = 64


@dataclass(frozen=True)
class StudentSpec:
    """Architecture keyword arguments of :class:`medsegmamba.models.MedSegMamba` for a student."""

    name: str
    t: int
    channels: tuple[int, ...]
    d_state: int
    num_blocks: int

    def kwargs(self) -> dict:
        return {"channels": self.channels, "d_state": self.d_state, "num_blocks": self.num_blocks}


def _round_up(value: int, multiple: int) -> int:
    return -(-int(value) // multiple) * multiple


def scale_channels(channels=PAPER_CHANNELS, t: int = 1, minimum: int = MIN_WIDTH) -> tuple[int, ...]:
    """Teacher widths ``(in, c1, c2, c3, c4, bottleneck)`` divided by ``2**t``, GroupNorm-safe.

    >>> scale_channels((1, 32, 64, 128, 256, 1024), 2)
    (1, 8, 16, 32, 64, 256)
    >>> scale_channels((1, 32, 64, 128, 256, 1024), 3)
    (1, 8, 16, 32, 64, 128)
    """
    channels = tuple(int(c) for c in channels)
    if len(channels) != 6:
        raise ValueError(f"channels: expected 6 sizes (in, c1, c2, c3, c4, bottleneck), got {channels}")
    if not isinstance(t, int) or t < 0:
        raise ValueError(f"t: expected a non-negative int (widths scaled by 2^-t), got {t!r}")
    if minimum <= 0 or minimum % MIN_WIDTH:
        raise ValueError(f"minimum: expected a positive multiple of {MIN_WIDTH}, got {minimum!r}")
    c1 = max(minimum, _round_up(channels[1] / 2 ** t, MIN_WIDTH))
    bottleneck = max(minimum, _round_up(channels[5] / 2 ** t, MIN_WIDTH))
    return (channels[0], c1, 2 * c1, 4 * c1, 8 * c1, bottleneck)


def student_spec(t: int, channels=PAPER_CHANNELS, d_state: int = PAPER_D_STATE,
                 num_blocks: int = 9, min_d_state: int = 8) -> StudentSpec:
    """The student at scale ``2**-t`` of a teacher with these widths, state size and depth."""
    if d_state <= 0 or num_blocks <= 0:
        raise ValueError(f"d_state, num_blocks: expected positive ints, got {d_state!r}, {num_blocks!r}")
    return StudentSpec(name=f"student-t{t}", t=t, channels=scale_channels(channels, t),
                       d_state=max(min_d_state, d_state // 2 ** t), num_blocks=num_blocks)


# The paper-teacher students, by preset name (what `medsegmamba distill --student` accepts).
PRESETS: dict[str, StudentSpec] = {f"student-t{t}": student_spec(t) for t in (1, 2, 3)}


def resolve_student(name_or_t, teacher_channels=None, teacher_d_state=None,
                    teacher_num_blocks=None) -> StudentSpec:
    """``"student-t2"``, ``"t2"`` or ``2`` -> spec; scaled from the given teacher when one is given."""
    text = str(name_or_t).strip().lower()
    digits = text.removeprefix("student-").removeprefix("t")
    if not digits.isdigit() or int(digits) not in (1, 2, 3):
        raise ValueError(f"student: expected one of {sorted(PRESETS)} (or t = 1, 2, 3), got {name_or_t!r}")
    t = int(digits)
    if teacher_channels is None:
        return PRESETS[f"student-t{t}"]
    return student_spec(t, teacher_channels, teacher_d_state or PAPER_D_STATE,
                        teacher_num_blocks or 9)


def build_student(spec: StudentSpec, **model_kwargs):
    """A :class:`MedSegMamba` with the student's widths (``model_kwargs``: bottleneck, patch_size...)."""
    from .medsegmamba import MedSegMamba

    return MedSegMamba(**{**model_kwargs, **spec.kwargs()})


__all__ = ["StudentSpec", "scale_channels", "student_spec", "resolve_student", "build_student",
           "PRESETS", "MIN_WIDTH"]
