import itertools

import torch
import torch.nn.functional as F

from medsegmamba.distill.loop import LoopOptions, train_student
from medsegmamba.distill.reco_kd import ReCoKD, ReCoKDConfig, feature_widths
from medsegmamba.distill.self_distill import SelfDistillation

PATCH = 32


def test_loop_trains_student_leaves_teacher(tiny_pair, batch):
    teacher, student = tiny_pair
    t_before = {k: v.clone() for k, v in teacher.state_dict().items()}
    s_before = student.Conv1.conv[0].weight.detach().clone()
    reco = ReCoKD(feature_widths(student, PATCH), feature_widths(teacher, PATCH), 32,
                  ReCoKDConfig(warmup_steps=1, ca_pool=2))
    sd = SelfDistillation(feature_widths(student, PATCH), 32)
    out = train_student(student, itertools.repeat(batch), lambda lg, t: F.cross_entropy(lg, t),
                        LoopOptions(steps=2, log_every=1), teacher=teacher, reco=reco,
                        self_distill=sd)
    assert out["steps"] == 2 and not out["stopped_early"]
    last = out["history"][-1]
    assert {"seg", "sard", "ca", "kd", "aux_seg", "self_kd", "hint"} <= set(last)
    assert all(torch.isfinite(torch.tensor(v)) for v in last.values())
    assert all(torch.equal(v, teacher.state_dict()[k]) for k, v in t_before.items())
    assert not torch.equal(s_before, student.Conv1.conv[0].weight)


def test_a_resumed_run_warms_its_fresh_optimizer_up_again(tiny_pair, batch):
    from medsegmamba.distill.loop import _lr_factor

    _, student = tiny_pair
    loss = lambda lg, t: F.cross_entropy(lg, t)  # noqa: E731
    out = train_student(student, itertools.repeat(batch), loss,
                        LoopOptions(steps=3, lr=1e-3, lr_warmup=4, log_every=1), start_step=10)
    want = [1e-3 * _lr_factor(10 + i, 13, 4) * (i + 1) / 4 for i in range(3)]
    assert [r["lr"] for r in out["history"]] == want
    # handed its optimizer back, a run continues without a second warm-up
    again = train_student(student, itertools.repeat(batch), loss,
                          LoopOptions(steps=2, lr=1e-3, lr_warmup=4, log_every=1), start_step=13,
                          optimizer=out["optimizer"])
    assert [r["lr"] for r in again["history"]] == [1e-3 * _lr_factor(13 + i, 15, 4) for i in range(2)]
