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


def test_resume_from_another_kind_of_device_reseeds(tmp_path, make_blob_map, caplog):
    """A checkpoint written on a GPU holds a CUDA generator state (16 bytes), which a CPU generator
    cannot take: the run continues re-seeded, with a warning, instead of stopping on a traceback."""
    from safetensors.torch import load_file, save_file

    from medsegmamba.models.checkpoint import read_metadata
    from medsegmamba.train.loop import Trainer

    first = Trainer(_config(tmp_path, "a", make_blob_map, max_iters=1), device="cpu")
    first.run()
    path = tmp_path / "a/last.safetensors"
    tensors = load_file(path)
    assert tensors["rng.synth"].numel() > 16
    tensors["rng.synth"] = torch.zeros(16, dtype=torch.uint8)  # the size of a CUDA Philox state
    save_file(tensors, path, metadata=read_metadata(path))
    with caplog.at_level("WARNING"):
        resumed = Trainer(_config(tmp_path, "b", max_iters=2, resume=str(path)), device="cpu")
    assert resumed.iteration == 1
    assert "another kind of device" in caplog.text
    before = _params(resumed.model)
    resumed.run()
    assert not all(torch.equal(before[k], v) for k, v in _params(resumed.model).items())


def test_schedule():
    assert lr_at(0, 1.0, 2, 10) == 0.5 and lr_at(1, 1.0, 2, 10) == 1.0
    assert lr_at(2, 1.0, 2, 10) == pytest.approx(1.0)
    assert lr_at(7, 1.0, 2, 10) == pytest.approx(0.01 + 0.99 * 0.5)  # half a period: middle
    assert lr_at(12, 1.0, 2, 10) == pytest.approx(1.0)  # warm restart
    assert lr_at(12 + 10, 1.0, 2, 10, t_mult=2) == pytest.approx(0.505)  # period now 20


def test_schedule_end_cuts_the_last_cycle():
    # the cycle 12..32 is cut to 12..22: its middle is at 17 and it ends near the floor
    assert lr_at(12, 1.0, 2, 10, t_mult=2, end=22) == pytest.approx(1.0)
    assert lr_at(17, 1.0, 2, 10, t_mult=2, end=22) == pytest.approx(0.505)
    assert lr_at(21, 1.0, 2, 10, t_mult=2, end=22) < 0.04
    # cycles that end before `end` are untouched
    assert all(lr_at(i, 1.0, 2, 10, t_mult=2, end=22) == lr_at(i, 1.0, 2, 10, t_mult=2) for i in range(12))


def test_schedule_restart_at_starts_one_fresh_cycle():
    # before the restart: the regular schedule; from it: warm-up 2, then one cosine 32..40
    assert all(lr_at(i, 1.0, 2, 10, t_mult=2, end=40, restart_at=30)
               == lr_at(i, 1.0, 2, 10, t_mult=2, end=40) for i in range(30))
    assert lr_at(30, 1.0, 2, 10, end=40, restart_at=30) == 0.5
    assert lr_at(31, 1.0, 2, 10, end=40, restart_at=30) == 1.0
    assert lr_at(36, 1.0, 2, 10, end=40, restart_at=30) == pytest.approx(0.505)
    assert lr_at(39, 1.0, 2, 10, end=40, restart_at=30) < 0.06
    with pytest.raises(ValueError, match="restart_at 30"):
        lr_at(30, 1.0, 2, 10, end=31, restart_at=30)


def test_trainer_follows_restart_at(tmp_path, make_blob_map):
    """The loop hands restart_at to the schedule: the logged learning rates are lr_at's with it."""
    from medsegmamba.train.loop import Trainer

    cfg = _config(tmp_path, "r", make_blob_map, max_iters=5, restart_at=2, warmup=2, t0=100, lr=1e-3,
                  accum=1, ce_until=0)
    Trainer(cfg, device="cpu").run()
    logged = [r["lr"] for r in map(json.loads, open(tmp_path / "r/log.jsonl")) if r["kind"] == "train"]
    expect = [lr_at(i, 1e-3, 2, 100, 2.0, end=5, restart_at=2) for i in range(5)]
    assert logged == pytest.approx(expect)
    assert expect[2] == pytest.approx(5e-4)  # warm-up again at the restart, not the old cycle's 1e-3


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


def test_seed_class_copies_the_row_a_fixed_step_lower():
    from medsegmamba.models import build_model
    from medsegmamba.models.registry import ModelConfig
    from medsegmamba.train.state import SEED_OFFSET, parse_seed_classes, seed_class

    torch.manual_seed(0)
    model = build_model(ModelConfig.from_dict(TINY)).eval()
    [(target, source)] = parse_seed_classes(["24=14"])
    assert (target, source) == (14, 9)  # class indices of CSF and the 3rd ventricle
    before = _params(model)
    seed_class(model, target, source)
    x = torch.rand(1, 1, 32, 32, 32)
    with torch.no_grad():
        logits = model.forward_logits(x)
    # the seeded class scores its source's logit less the offset at every voxel
    assert torch.allclose(logits[:, target], logits[:, source] - SEED_OFFSET, atol=1e-5)
    after = model.state_dict()
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert changed == ["Conv_1x1.weight", "Conv_1x1.bias"]
    others = [c for c in range(32) if c != target]
    assert torch.equal(before["Conv_1x1.weight"][others], after["Conv_1x1.weight"][others])


@pytest.mark.parametrize("item, message", [("24-14", "TARGET=SOURCE"), ("24=999", "999 is not"),
                                           ("0=14", "0 is not"), ("24=24", "from itself")])
def test_seed_class_refuses_bad_pairs(item, message):
    from medsegmamba.train.state import parse_seed_classes

    with pytest.raises(ValueError, match=message):
        parse_seed_classes([item])


def test_compile_wraps_the_training_path(tmp_path, make_blob_map, monkeypatch):
    # --compile hands the training path (forward, loss terms) to torch.compile and the steps run
    # through what it returns; here a stand-in that counts them (inductor would take minutes on 2 cores)
    import argparse

    from medsegmamba.train import loop
    from medsegmamba.train.command import add_arguments, build_config

    compiled = []

    class Counted(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner, self.calls = inner, 0

        def forward(self, *args):
            self.calls += 1
            return self.inner(*args)

    def fake_compile(module):
        compiled.append(Counted(module))
        return compiled[-1]

    monkeypatch.setattr(torch, "compile", fake_compile)
    trainer = loop.Trainer(_config(tmp_path, "a", make_blob_map, max_iters=1, compile=True), device="cpu")
    assert len(compiled) == 1 and isinstance(compiled[0].inner, loop._TrainPath)
    trainer.run()
    assert trainer.net is compiled[0] and compiled[0].calls == 2  # one iteration of 2 accumulated steps
    loop.Trainer(_config(tmp_path, "b", max_iters=1), device="cpu")
    assert len(compiled) == 1  # off by default
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    assert build_config(parser.parse_args(["--compile"])).compile
    assert not build_config(parser.parse_args([])).compile


def test_channels_last_gives_the_same_gradients(tmp_path, make_blob_map):
    # --channels-last changes only the memory order: the model and its activations are channels_last_3d,
    # with dropout off its loss and gradients are the contiguous model's, and its checkpoint resumes.
    # In training the dropout masks fall in memory order, so steps differ. The gradients match to
    # 0.4 % here (2 % allowed) only: the convolutions round differently (2e-5 of an activation's
    # range), and this small untrained network's gradients move as much for 2e-5 relative noise on
    # the patch (max-pooling's winners change); a wrong permutation would move them by their own size
    import argparse

    from medsegmamba.models.layers import is_channels_last_3d
    from medsegmamba.train.command import add_arguments, build_config
    from medsegmamba.train.loop import Trainer
    from medsegmamba.train.losses import segmentation_loss

    # batch 2: at batch 1 the CPU's convolution takes the one-channel patch, which is also contiguous,
    # for a contiguous one and answers contiguous whatever its weights
    plain = Trainer(_config(tmp_path, "a", make_blob_map, max_iters=1, batch_size=2, accum=1), device="cpu")
    last = Trainer(_config(tmp_path, "b", max_iters=1, batch_size=2, accum=1, channels_last=True), device="cpu")
    img, tgt = plain.gen.sample(2)
    losses, grads = [], []
    for trainer in (plain, last):
        trainer.model.eval()
        loss, _ = segmentation_loss(trainer.model.forward_logits(img), tgt, trainer.weights, True)
        loss.backward()
        losses.append(loss.item())
        grads.append(torch.cat([p.grad.flatten() for p in trainer.model.parameters()]))
        trainer.model.zero_grad(set_to_none=True)
    assert losses[1] == pytest.approx(losses[0], rel=1e-5)
    assert (grads[1] - grads[0]).norm() < 0.02 * grads[0].norm()

    convs = [m for m in last.model.modules() if isinstance(m, torch.nn.Conv3d) and m.kernel_size[0] > 1]
    seen = []  # the second convolution's input: an activation
    convs[1].register_forward_pre_hook(lambda m, args: seen.append(is_channels_last_3d(args[0])))
    last.run()
    assert seen and all(seen), "the activations are not channels_last_3d"
    assert all(m.weight.is_contiguous(memory_format=torch.channels_last_3d) for m in convs)  # after AdamW
    resumed = Trainer(_config(tmp_path, "c", max_iters=1, batch_size=2, accum=1, channels_last=True,
                              resume=str(tmp_path / "b/last.safetensors")), device="cpu")
    assert resumed.iteration == 1
    b = _params(last.model)
    assert all(torch.equal(b[k], v) for k, v in _params(resumed.model).items())
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    assert build_config(parser.parse_args(["--channels-last"])).channels_last
    assert not build_config(parser.parse_args([])).channels_last


def test_seed_class_flag_reaches_the_config():
    import argparse

    from medsegmamba.train.command import add_arguments, build_config

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    cfg = build_config(parser.parse_args(["--seed-class", "24=14", "--seed-class", "77=4"]))
    assert cfg.seed_classes == ["24=14", "77=4"]
    with pytest.raises(ValueError, match="TARGET=SOURCE"):
        build_config(parser.parse_args(["--seed-class", "CSF"]))


def test_bad_training_option_is_one_clear_line(capsys):
    from medsegmamba.cli import main

    assert main(["train", "--seed-class", "CSF", "--smoke"]) == 1
    err = capsys.readouterr().err.strip()
    assert err == "medsegmamba: error: seed class: expected TARGET=SOURCE (two FreeSurfer labels), got 'CSF'"


def test_restart_inside_its_warm_up_is_one_clear_line(tmp_path, capsys):
    from medsegmamba.cli import main

    # refused before any data is read (the folder does not exist) or any iteration is run
    args = ["train", "--data", str(tmp_path / "none"), "--out", str(tmp_path / "o"), "--restart-at", "44313"]
    assert main([*args, "--max-iters", "44316"]) == 1
    assert capsys.readouterr().err.strip() == ("medsegmamba: error: restart_at 44313: its cycle needs max_iters "
                                               "past the 100-iteration warm-up (above 44413), got 44316")
    assert not (tmp_path / "o").exists()
    assert main([*args, "--max-iters", "44414"]) == 1  # accepted: now the missing data is the error
    assert "not a folder" in capsys.readouterr().err and not (tmp_path / "o").exists()


def test_bad_config_file_is_named(tmp_path, capsys):
    from medsegmamba.cli import main

    path = tmp_path / "c.json"
    path.write_text('{"lr": 0.001, "bogus": 1}')
    assert main(["train", "--config", str(path), "--smoke"]) == 1
    assert capsys.readouterr().err.startswith(f"medsegmamba: error: {path}: training config: unknown keys ['bogus']")
    assert main(["train", "--config", str(tmp_path / "none.json")]) == 1
    assert "none.json: cannot read the training config" in capsys.readouterr().err


def test_missing_training_data_is_named(tmp_path, capsys):
    from medsegmamba.cli import main
    from medsegmamba.train.command import main as train_main

    (tmp_path / "empty").mkdir()
    assert main(["train", "--smoke", "--data", str(tmp_path / "none"), "--out", str(tmp_path / "o")]) == 1
    assert capsys.readouterr().err.strip() == (f"medsegmamba: error: {tmp_path / 'none'}: not a folder "
                                               "(training data: a folder of label maps, or images + labels)")
    # the module entry point that torchrun runs says it in one line too
    assert train_main(["--smoke", "--data", str(tmp_path / "empty"), "--out", str(tmp_path / "o")]) == 1
    assert capsys.readouterr().err.strip() == (f"medsegmamba train: error: {tmp_path / 'empty'}: "
                                               "no volumes (.nii.gz, .nii, .mgz) in this folder")


def test_self_distillation_option(tmp_path, make_blob_map):
    """--self-distill: heads at dec4/dec3 train beside the model, add their loss, and stay out of
    the checkpoint and the exported weights (so a checkpoint resumes with or without them)."""
    from medsegmamba.train.loop import Trainer

    plain = Trainer(_config(tmp_path, "plain", make_blob_map, max_iters=1), device="cpu")
    sd = Trainer(_config(tmp_path, "sd", max_iters=2, self_distill=1.0), device="cpu")
    assert sorted(sd.self_distill.heads) == ["dec3", "dec4"]
    heads = {k: v.clone() for k, v in sd.self_distill.state_dict().items()}
    rec = sd.step()
    assert rec["self_distill"] > 0 and plain.step()["self_distill"] == 0.0
    plain.run()  # at max_iters already: saves its checkpoint
    assert not all(torch.equal(heads[k], v) for k, v in sd.self_distill.state_dict().items())
    sd.run()
    from safetensors import safe_open

    with safe_open(str(tmp_path / "sd/last.safetensors"), "pt") as f:
        saved = set(f.keys())
    model_keys = {k for k in saved if k.startswith("model.")}
    assert model_keys == {f"model.{k}" for k in plain.model.state_dict()}
    assert not any("heads" in k or "hints" in k for k in saved)
    resumed = Trainer(_config(tmp_path, "r", max_iters=3, resume=str(tmp_path / "sd/last.safetensors")),
                      device="cpu")
    assert resumed.iteration == 2 and resumed.self_distill is None
    resumed.run()
    again = Trainer(_config(tmp_path, "r2", max_iters=3, self_distill=0.5,
                            resume=str(tmp_path / "plain/last.safetensors")), device="cpu")
    assert again.iteration == 1  # a checkpoint made without the heads resumes with them
    assert again.self_distill.config.w_aux_seg == pytest.approx(0.15)  # 0.5 x the distill command's 0.3


def test_synth_flag_overrides_the_configs_generator_fields(tmp_path):
    import argparse

    from medsegmamba.train.command import add_arguments, build_config

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    config = tmp_path / "c.json"
    config.write_text('{"synth": {"iso_prob": 0.2, "ilv_erode_prob": 0.2}}')
    cfg = build_config(parser.parse_args(["--config", str(config), "--synth", '{"ilv_erode_prob": 0.4}']))
    assert cfg.synth == {"iso_prob": 0.2, "ilv_erode_prob": 0.4}
    assert cfg.synth_config().ilv_erode_prob == 0.4 and cfg.synth_config().iso_prob == 0.2


def test_bad_synth_flag_is_one_clear_line(tmp_path, capsys):
    from medsegmamba.cli import main

    # refused before any data is read: the folder does not exist
    args = ["train", "--data", str(tmp_path / "none"), "--out", str(tmp_path / "o"), "--synth"]
    for value, message in [
        ("{x", "--synth: not valid JSON (Expecting property name enclosed in double quotes: line 1 column 2 (char 1))"),
        ("[1]", "--synth: expected a JSON object of generator fields, got '[1]'"),
        ('{"ilv_erode_prob": 2}', "synth.ilv_erode_prob: expected a probability in [0, 1], got 2"),
        ('{"ilv_erode_prob": "a"}', "synth.ilv_erode_prob: expected a number, got 'a'"),
    ]:
        assert main([*args, value]) == 1
        assert capsys.readouterr().err.strip() == f"medsegmamba: error: {message}"
    assert main([*args, '{"bogus": 1}']) == 1
    assert capsys.readouterr().err.startswith("medsegmamba: error: synth: unknown fields ['bogus']; allowed: [")
    assert not (tmp_path / "o").exists()
