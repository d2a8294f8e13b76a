import json

import pytest
import torch

from models_support import golden
from medsegmamba import weights
from medsegmamba.models import (ModelConfig, authors_state_dict_to_ours, build_model, infer_config,
                                load_authors_checkpoint, load_checkpoint, save_checkpoint)


def test_authors_to_ours_to_safetensors_bit_exact(tmp_path):
    sd = golden("a_state_dict.safetensors")
    ours, cfg = authors_state_dict_to_ours(sd)
    assert cfg == ModelConfig(channels=(1, 8, 16, 32, 64, 32), num_blocks=6, d_state=8, num_classes=4)
    m = build_model(cfg)
    m.load_state_dict(ours, strict=True)
    path = save_checkpoint(m, cfg, tmp_path / "a.safetensors", {"provenance": "golden a", "metrics": {"dice": 0.5}})
    m2, cfg2, meta = load_checkpoint(path)
    assert cfg2 == cfg and meta["provenance"] == "golden a" and json.loads(meta["metrics"]) == {"dice": 0.5}
    back = m2.state_dict()
    assert set(back) == set(sd)
    for k, v in sd.items():
        assert back[k].dtype == v.dtype and torch.equal(back[k], v), k


@pytest.mark.parametrize("wrap", ["bare", "model_state_dict", "state_dict", "module"])
def test_authors_pt_loads_with_weights_only(tmp_path, wrap):
    sd = golden("b_state_dict.safetensors")
    if wrap == "module":
        obj = {"module." + k: v for k, v in sd.items()}
    elif wrap == "bare":
        obj = sd
    else:
        obj = {wrap: sd, "epoch": 3, "optimizer": {"lr": 1e-3}}
    torch.save(obj, tmp_path / "ckpt.pt")
    m, cfg = load_authors_checkpoint(tmp_path / "ckpt.pt")
    assert cfg.num_blocks == 9 and cfg.d_state == 4 and cfg.channels[-1] == 48
    assert all(torch.equal(m.state_dict()[k], v) for k, v in sd.items())


def test_remap_rejects_bad_shapes_and_keys():
    sd = dict(golden("a_state_dict.safetensors"))
    bad = dict(sd, **{"Up4.up.0.1.bias": torch.zeros(31)})
    with pytest.raises(ValueError, match=r"Up4.up.0.1.bias.*\(32,\).*\(31,\)"):
        authors_state_dict_to_ours(bad)
    extra = dict(sd, **{"head.weight": torch.zeros(1)})
    with pytest.raises(ValueError, match="unexpected.*head.weight"):
        authors_state_dict_to_ours(extra)
    with pytest.raises(ValueError, match="missing key 'Conv1.conv.0.weight'"):
        infer_config({"x": torch.zeros(1)})


def test_load_pretrained_registry(tmp_path):
    with pytest.raises(LookupError, match="no pretrained weights"):
        weights.load_pretrained("aseg", registry=tmp_path / "registry.json")
    cfg = ModelConfig(channels=(1, 8, 16, 32, 64, 16), num_blocks=1, d_state=4, num_classes=3, patch_size=32)
    torch.manual_seed(0)
    m = build_model(cfg)
    path = save_checkpoint(m, cfg, tmp_path / "tiny.safetensors")
    entry = {"name": "tiny", "file": "tiny.safetensors", "sha256": weights.sha256sum(path),
             "config": cfg.to_dict(), "provenance": "test", "metrics": {}}
    reg = tmp_path / "registry.json"
    reg.write_text(json.dumps([entry]))
    m2, cfg2, meta = weights.load_pretrained("tiny", registry=reg)
    assert cfg2 == cfg and meta["name"] == "tiny"
    assert all(torch.equal(a, b) for a, b in zip(m.state_dict().values(), m2.state_dict().values()))
    assert [e["name"] for e in weights.available(reg)] == ["tiny"]
    with pytest.raises(LookupError, match="unknown name 'other'.*tiny"):
        weights.load_pretrained("other", registry=reg)
    reg.write_text(json.dumps([dict(entry, sha256="0" * 64)]))
    with pytest.raises(ValueError, match="sha256 mismatch"):
        weights.load_pretrained("tiny", registry=reg)
