import pytest
import torch

from medsegmamba.models.students import PRESETS, build_student, resolve_student, scale_channels

PATCH = 32


def test_paper_students_widths_groupnorm_safe():
    assert scale_channels((1, 32, 64, 128, 256, 1024), 1) == (1, 16, 32, 64, 128, 512)
    assert scale_channels((1, 32, 64, 128, 256, 1024), 2) == (1, 8, 16, 32, 64, 256)
    # t = 3 would give c1 = 4: GroupNorm(8) cannot split it, so the floor of 8 applies
    assert scale_channels((1, 32, 64, 128, 256, 1024), 3) == (1, 8, 16, 32, 64, 128)
    for spec in PRESETS.values():
        assert all(c % 8 == 0 for c in spec.channels[1:])
    assert [PRESETS[f"student-t{t}"].d_state for t in (1, 2, 3)] == [32, 16, 8]


def test_resolve_names_and_errors():
    assert resolve_student("t2") == resolve_student("student-t2") == resolve_student(2)
    spec = resolve_student(1, teacher_channels=(1, 16, 32, 64, 128, 64), teacher_d_state=16,
                           teacher_num_blocks=2)
    assert spec.channels == (1, 8, 16, 32, 64, 32) and spec.d_state == 8 and spec.num_blocks == 2
    with pytest.raises(ValueError, match="student: expected one of"):
        resolve_student("student-t7")
    with pytest.raises(ValueError, match="channels: expected 6"):
        scale_channels((1, 32, 64), 1)


def test_student_builds_runs_and_is_smaller():
    from medsegmamba.models import MedSegMamba

    teacher = MedSegMamba(channels=(1, 16, 32, 64, 128, 64), num_blocks=1, d_state=8, patch_size=PATCH)
    spec = resolve_student(1, teacher.channels, 8, 1)
    student = build_student(spec, patch_size=PATCH)
    n = lambda m: sum(p.numel() for p in m.parameters())
    assert n(student) < n(teacher) / 3
    out = student.forward_logits(torch.rand(1, 1, PATCH, PATCH, PATCH))
    assert out.shape == (1, 32, PATCH, PATCH, PATCH)
