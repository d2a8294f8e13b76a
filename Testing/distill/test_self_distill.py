import pytest
import torch

from medsegmamba.distill.reco_kd import feature_widths
from medsegmamba.distill.self_distill import SelfDistillConfig, SelfDistillation, soft_ce

PATCH = 32  # as in conftest.py


def test_soft_ce_matches_hard_ce_for_one_hot():
    logits = torch.randn(1, 3, 2, 2, 2)
    target = torch.randint(0, 3, (1, 2, 2, 2))
    onehot = torch.nn.functional.one_hot(target, 3).permute(0, 4, 1, 2, 3).float()
    assert float(soft_ce(logits, onehot)) == pytest.approx(
        float(torch.nn.functional.cross_entropy(logits, target)), rel=1e-5)


def test_self_kd_does_not_train_the_finest_head(tiny_pair, batch):
    _, model = tiny_pair
    image, target = batch
    sd = SelfDistillation(feature_widths(model, PATCH), 32,
                          SelfDistillConfig(w_aux_seg=0, w_hint=0, warmup_steps=0))
    logits, feats = model.forward_features(image)
    logits.retain_grad()
    loss, terms = sd(logits, feats, target, step=5)
    assert set(terms) == {"aux_seg", "self_kd", "hint"}
    loss.backward()
    assert logits.grad is None or float(logits.grad.abs().sum()) == 0.0
    assert model.Conv_1x1.weight.grad is None  # the finest head is the teacher here
    assert sd.heads["dec4"].weight.grad.abs().sum() > 0
    assert model.Up_conv4.conv[0].weight.grad.abs().sum() > 0  # the aux path trains the decoder


def test_self_kd_warmup_and_weights(tiny_pair, batch):
    _, model = tiny_pair
    image, target = batch
    sd = SelfDistillation(feature_widths(model, PATCH), 32,
                          SelfDistillConfig(w_aux_seg=0.0, w_self_kd=1.0, w_hint=1.0, warmup_steps=10))
    with torch.no_grad():
        logits, feats = model.forward_features(image)
        assert float(sd(logits, feats, target, step=0)[0]) == 0.0
        assert float(sd(logits, feats, target, step=10)[0]) > 0.0


def test_config_errors():
    with pytest.raises(ValueError, match="w_hint"):
        SelfDistillConfig(w_hint=-1).check()
    with pytest.raises(ValueError, match="aux_scales"):
        SelfDistillConfig(aux_scales=("dec2",)).check()
