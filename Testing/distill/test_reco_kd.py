import pytest
import torch

from medsegmamba.distill.reco_kd import (ReCoKD, ReCoKDConfig, affinity, ca_loss, class_masks,
                                         feature_widths, kd_loss, sard_loss, warmup)

PATCH = 32  # as in conftest.py


def test_class_masks_area_pool_keeps_a_one_voxel_structure():
    target = torch.zeros(1, 4, 4, 4, dtype=torch.long)
    target[0, 0, 0, 0] = 5
    m = class_masks(target, 8, (2, 2, 2))
    assert m.shape == (1, 8, 2, 2, 2)
    assert m[0, 5, 0, 0, 0] == pytest.approx(1 / 8)  # one of the 8 fine voxels
    assert m[0, 5].sum() == pytest.approx(1 / 8)
    torch.testing.assert_close(m.sum(1), torch.ones(1, 2, 2, 2))


def test_sard_zero_for_equal_features_positive_otherwise():
    torch.manual_seed(0)
    t = torch.randn(2, 4, 3, 3, 3)
    masks = class_masks(torch.randint(0, 3, (2, 3, 3, 3)), 3, (3, 3, 3))
    assert float(sard_loss(t.clone(), t, masks)) == 0.0
    assert float(sard_loss(t + 0.1 * torch.randn_like(t), t, masks)) > 0.0


def test_sard_small_structure_weighs_as_much_as_a_large_one():
    # 1x1x8 "volume": class 1 is one voxel, class 0 the other seven.
    target = torch.zeros(1, 1, 1, 8, dtype=torch.long)
    target[..., 0] = 1
    masks = class_masks(target, 2, (1, 1, 8))
    teacher = torch.ones(1, 1, 1, 1, 8)  # RMS 1, so errors are not rescaled
    err_small = teacher.clone()
    err_small[..., 0] += 1.0  # error of 1 on the one-voxel structure only
    err_large = teacher.clone()
    err_large[..., 1:] += 1.0  # error of 1 on all seven background voxels
    small, large = float(sard_loss(err_small, teacher, masks)), float(sard_loss(err_large, teacher, masks))
    # each class term is its mean error: (1 + 0) / 2 in both cases; an unnormalised MSE
    # would give 1/8 versus 7/8.
    assert small == pytest.approx(0.5) and large == pytest.approx(0.5)
    assert float(sard_loss(err_small, teacher, masks, include_background=False)) == pytest.approx(1.0)


def test_ca_loss_ignores_width_and_sees_structure():
    torch.manual_seed(0)
    f = torch.randn(1, 6, 4, 4, 4)
    # duplicated channels change the width, not the cosine affinities
    assert float(ca_loss(torch.cat([f, f], 1), f, pool=2)) == pytest.approx(0.0, abs=1e-10)
    assert float(ca_loss(torch.randn(1, 12, 4, 4, 4), f, pool=2)) > 1e-3
    a = affinity(f, 2)
    assert a.shape == (1, 8, 8)
    torch.testing.assert_close(torch.diagonal(a, dim1=1, dim2=2), torch.ones(1, 8))


def test_kd_loss_zero_when_equal_and_scaled_by_t_squared():
    torch.manual_seed(0)
    t = torch.randn(2, 5, 3, 3, 3)
    assert float(kd_loss(t, t)) == pytest.approx(0.0, abs=1e-6)
    s = torch.randn_like(t)
    assert float(kd_loss(s, t, 1.0)) > 0
    assert float(kd_loss(s * 2, t * 2, 2.0)) == pytest.approx(4 * float(kd_loss(s, t, 1.0)), rel=1e-5)
    with pytest.raises(ValueError, match="temperature"):
        kd_loss(s, t, 0)


def test_warmup_is_linear():
    assert [warmup(s, 4) for s in (0, 1, 2, 4, 9)] == [0.0, 0.25, 0.5, 1.0, 1.0]
    assert warmup(0, 0) == 1.0


def test_reco_gradients_reach_student_and_adapters_not_teacher(tiny_pair, batch):
    teacher, student = tiny_pair
    image, target = batch
    reco = ReCoKD(feature_widths(student, PATCH), feature_widths(teacher, PATCH), 32,
                  ReCoKDConfig(warmup_steps=10, ca_pool=2))
    s_logits, s_feats = student.forward_features(image)
    t_logits, t_feats = teacher.forward_features(image)
    loss0, _ = reco(s_logits, s_feats, t_logits, t_feats, target, step=0)
    assert float(loss0.detach()) == 0.0  # warm-up starts at zero
    loss, terms = reco(s_logits, s_feats, t_logits, t_feats, target, step=10)
    assert set(terms) == {"sard", "ca", "kd"} and all(v > 0 for v in terms.values())
    loss.backward()
    assert all(p.grad is None for p in teacher.parameters())
    assert student.Conv1.conv[0].weight.grad.abs().sum() > 0
    assert all(a.weight.grad.abs().sum() > 0 for a in reco.adapters.values())


def test_reco_rejects_unknown_scale():
    with pytest.raises(ValueError, match="scale 'dec9'"):
        ReCoKD({"dec4": 8}, {"dec4": 16}, 32, ReCoKDConfig(sard_scales=("dec9",), ca_scales=()))
