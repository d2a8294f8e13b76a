import pytest
import torch

from medsegmamba.models import PRESETS, ModelConfig, build_model, get_config

TINY = dict(channels=(1, 8, 16, 32, 64, 16), num_blocks=1, d_state=4, patch_size=32)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_tiny_forward_backward(name):
    torch.manual_seed(0)
    m = build_model(name, **TINY).train()
    x = torch.rand(2, 1, 32, 32, 32)
    logits = m.forward_logits(x)
    assert logits.shape == (2, PRESETS[name].num_classes, 32, 32, 32)
    logits.pow(2).mean().backward()
    missing = [n for n, p in m.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, f"{name}: no gradient for {missing[:5]}"


def test_presets():
    assert get_config("paper") == ModelConfig()
    assert get_config("paper-hsf").num_classes == 25
    assert get_config("tabsurfer").num_blocks == 8 and get_config("tabsurfer").num_heads == 16
    assert get_config("small").channels == (1, 8, 16, 32, 64, 256)


def test_config_json_round_trip_and_errors():
    cfg = get_config("small").replace(dropout=0.1)
    assert ModelConfig.from_json(cfg.to_json()) == cfg
    with pytest.raises(ValueError, match="arch"):
        ModelConfig(arch="unet")
    with pytest.raises(ValueError, match="unknown fields"):
        ModelConfig.from_dict({"arch": "medsegmamba", "depth": 3})
    with pytest.raises(ValueError, match="model: expected"):
        build_model("huge")
