import json

import nibabel as nib
import numpy as np
import pytest
import torch

from medsegmamba.train.config import TrainConfig
from medsegmamba.train.losses import class_weights, soft_dice_loss
from medsegmamba.train.schedule import lr_at


TINY = {"arch": "medsegmamba", "channels": [1, 8, 16, 32, 64, 32], "num_blocks": 2, "d_state": 4,
        "num_classes": 32, "dropout": 0.1, "drop_path": 0.3, "patch_size": 32}


def _config(tmp_path, out, blob_map=None, **kw):
    data = tmp_path / "maps"
    if not data.exists():
        data.mkdir()
        for i in range(2):
            nib.save(nib.Nifti1Image(blob_map(40, i).astype(np.uint16), np.eye(4)),
                     str(data / f"m{i}.nii.gz"))
    base = dict(model=TINY, data=str(data), out=str(tmp_path / out), batch_size=1, accum=2,
                warmup=1, t0=2, ce_until=1, val_every=100, val_samples=1, ckpt_every=100,
                log_every=1, bf16=False, synth={"patch": 32, "coords_per_map": 300})
    base.update(kw)
    return TrainConfig.from_dict(base)


def _params(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_resume_is_exact(tmp_path, make_blob_map):
    from medsegmamba.train.loop import Trainer

    straight = Trainer(_config(tmp_path, "a", make_blob_map, max_iters=2), device="cpu")
    straight.run()
    half = Trainer(_config(tmp_path, "b", max_iters=1), device="cpu")
    half.run()
    resumed = Trainer(_config(tmp_path, "c", max_iters=2, resume=str(tmp_path / "b/last.safetensors")),
                      device="cpu")
    assert resumed.iteration == 1
    resumed.run()
    a, c = _params(straight.model), _params(resumed.model)
    assert all(torch.equal(a[k], c[k]) for k in a), "resumed weights differ from a straight run"
    # and the test can fail: one more step changes them
    resumed.cfg.max_iters = 3
    resumed.run()
    assert not all(torch.equal(a[k], v) for k, v in _params(resumed.model).items())
    log = [json.loads(x) for x in open(tmp_path / "a/log.jsonl")]
    assert [r["it"] for r in log if r["kind"] == "train"] == [1, 2]
    assert any(r["kind"] == "val" and 0 <= r["synth_dice"] <= 1 for r in log)


def test_schedule():
    assert lr_at(0, 1.0, 2, 10) == 0.5 and lr_at(1, 1.0, 2, 10) == 1.0
    assert lr_at(2, 1.0, 2, 10) == pytest.approx(1.0)
    assert lr_at(7, 1.0, 2, 10) == pytest.approx(0.01 + 0.99 * 0.5)  # half a period: middle
    assert lr_at(12, 1.0, 2, 10) == pytest.approx(1.0)  # warm restart
    assert lr_at(12 + 10, 1.0, 2, 10, t_mult=2) == pytest.approx(0.505)  # period now 20


def test_dice_loss_known():
    target = torch.zeros(1, 4, 4, 4, dtype=torch.long)
    target[0, :2] = 1
    perfect = torch.nn.functional.one_hot(target, 2).movedim(-1, 1).float() * 100
    assert soft_dice_loss(perfect, target, eps=0).item() == pytest.approx(0, abs=1e-6)
    assert soft_dice_loss(-perfect, target, eps=0).item() == pytest.approx(1, abs=1e-6)
    # uniform prediction: per class Dice = 2*16 / (32 + 32) = 0.5
    assert soft_dice_loss(torch.zeros(1, 2, 4, 4, 4), target, eps=0).item() == pytest.approx(0.5)


def test_class_weights():
    w = class_weights([100, 25, 0, 1])
    assert w[2] == 1.0 and w[0] < w[1] < w[3]
    assert w[[0, 1, 3]].mean().item() == pytest.approx(1.0, rel=0.2)


def test_unknown_config_key(tmp_path):
    with pytest.raises(ValueError, match="unknown keys"):
        TrainConfig.from_dict({"lr": 1, "lrr": 2})
