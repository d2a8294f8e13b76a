"""scripts/distill_experiment.py: its CPU smoke mode on a made-up head (trains two arms at batch 2,
resumes them and writes the table, so that a device call does not fail on what the CPU can catch;
about a minute on 2 cores, so marked slow: `python3 -m pytest -m slow Testing/distill`), and
--merge, which joins arms run in separate device calls."""

import json
import os
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]


def made_up_head(folder: Path):
    """A 256^3 1 mm head of nested boxes: skull-like shell, white matter, two thalami, ventricles.
    Written as a label map for the generator and as orig/aseg for the fsaverage check."""
    lab = np.zeros((256,) * 3, np.uint16)
    lab[40:216, 40:216, 40:216] = 24                       # CSF shell
    lab[50:206, 50:206, 50:206] = 2                        # left WM (whole brain, for simplicity)
    lab[128:206, 50:206, 50:206] = 41                      # right WM
    lab[100:126, 110:140, 110:140] = 10                    # left thalamus
    lab[130:156, 110:140, 110:140] = 49                    # right thalamus
    lab[110:126, 145:160, 120:135] = 4                     # left lateral ventricle
    affine = np.diag([-1.0, 1.0, 1.0, 1.0])
    affine[:3, 3] = [128, -128, -128]
    (folder / "label_maps").mkdir(parents=True)
    (folder / "fsaverage").mkdir()
    nib.save(nib.Nifti1Image(lab, affine), folder / "label_maps" / "head.nii.gz")
    nib.save(nib.Nifti1Image(lab.astype(np.int32), affine), folder / "fsaverage" / "aseg.nii.gz")
    intensity = np.zeros(256, np.uint8)
    intensity[[24, 2, 41, 10, 49, 4]] = [30, 200, 200, 150, 150, 20]
    nib.save(nib.Nifti1Image(intensity[lab], affine), folder / "fsaverage" / "orig.nii.gz")


@pytest.mark.slow
def test_smoke_batch_and_resume(tmp_path):
    made_up_head(tmp_path / "data")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "MedSegMamba")}

    def run(out, *extra):
        proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "distill_experiment.py"), "--smoke",
                               "--data", str(tmp_path / "data"), "--out", str(out), "--arms", "student,self",
                               "--batch", "2", *extra], capture_output=True, text=True, timeout=600, env=env)
        assert proc.returncode == 0, proc.stderr[-3000:]
        return json.loads((out / "results.json").read_text()), proc.stderr

    first, _ = run(tmp_path / "a")
    assert first["batch"] == 2 and first["arms"]["student"]["steps"] == 2
    assert 0 <= first["arms"]["student"]["mean_dice"] <= 1
    from safetensors import safe_open

    with safe_open(str(tmp_path / "a" / "self.safetensors"), "pt") as f:  # the heads travel with the arm
        assert any(k.startswith("extra.heads.") for k in f.keys())
    second, log = run(tmp_path / "b", "--resume", str(tmp_path / "a"))
    assert "student: resumed at step 2" in log and "self: resumed at step 2" in log
    assert second["arms"]["student"]["steps"] == second["arms"]["self"]["steps"] == 4
    assert "batch 2" in (tmp_path / "b" / "results.md").read_text()
    # --retime: each arm's weights loaded back and timed again, the table rewritten
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "distill_experiment.py"), "--smoke", "--retime",
                           "--data", str(tmp_path / "data"), "--out", str(tmp_path / "b")],
                          capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    timed = json.loads((tmp_path / "b" / "results.json").read_text())
    assert timed["latency"].startswith("each arm alone") and "each arm alone" in (tmp_path / "b" / "results.md").read_text()
    assert {n: a["mean_dice"] for n, a in timed["arms"].items()} == {n: a["mean_dice"] for n, a in second["arms"].items()}
    assert all(a["latency_s"] > 0 for a in timed["arms"].values())
    assert "student: " in proc.stderr and "s per scan alone" in proc.stderr


def test_merge_joins_arms_of_separate_runs(tmp_path, load_script):
    mod = load_script("scripts/distill_experiment.py")
    arm = lambda d: {"params": 10, "steps": 5, "train_s": 1.0, "mean_dice": d, "latency_s": 0.1,  # noqa: E731
                     "dice": {"Left-Thalamus": d}}
    common = {"device": "gpu", "steps_per_arm": 9, "batch": 4, "patch": 96, "step": 32, "seg_loss": "x"}
    for name, arms in (("a", {"teacher": arm(0.8), "student": arm(0.1)}), ("b", {"reco": arm(0.2)})):
        (tmp_path / name).mkdir()
        (tmp_path / name / "results.json").write_text(json.dumps({**common, "arms": arms}))
    merged = mod.merge([tmp_path / "a", tmp_path / "b"], tmp_path / "all")
    assert list(merged["arms"]) == ["teacher", "student", "reco"]
    table = (tmp_path / "all" / "results.md").read_text()
    assert "| reco | 10 | 5 | 1 | 0.200 | 0.10 |" in table and "batch 4" in table
    with pytest.raises(SystemExit, match="arm 'reco' appears twice"):
        mod.merge([tmp_path / "b", tmp_path / "b"], tmp_path / "x")
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "results.json").write_text(json.dumps({**common, "batch": 1, "arms": {"self": arm(0.3)}}))
    with pytest.raises(SystemExit, match=r"c differs from .*a in \['batch'\]"):
        mod.merge([tmp_path / "a", tmp_path / "c"], tmp_path / "y")


def test_export_arms_writes_checkpoints_the_cli_loads(tmp_path, load_script):
    """--export-arms: every trained arm (a student, KAN-Mamba) becomes a registry checkpoint with the
    same weights, its architecture in the config, without the training-only extras."""
    import torch

    from medsegmamba.models.checkpoint import load_checkpoint

    mod = load_script("scripts/distill_experiment.py")
    run = tmp_path / "run"
    run.mkdir()
    args = mod.parse_args(["--out", str(run), "--smoke", "--export-arms", str(tmp_path / "ck")])
    base, trained = mod.SMOKE_TEACHER, {}
    for name in ("student", "kan"):
        torch.manual_seed(len(name))
        trained[name] = mod.build_arm(name, args, base, 32)
        mod.checkpoint_io(trained[name], run / f"{name}.safetensors", extra=torch.nn.Linear(2, 2))
    (run / "results.json").write_text(json.dumps({
        "patch": 32, "teacher_config": {k: list(v) if isinstance(v, tuple) else v for k, v in base.items()},
        "arms": {n: {"steps": 7, "mean_dice": 0.5} for n in trained}}))
    written = mod.export_arms(args)
    assert [p.name for p in written] == ["student.safetensors", "kan.safetensors"]
    for name, path in zip(trained, written):
        model, config, meta = load_checkpoint(path)
        assert config.arch == ("kan-mamba" if name == "kan" else "medsegmamba") and meta["arm"] == name
        ours = trained[name].state_dict()
        assert set(model.state_dict()) == set(ours)
        assert all(torch.equal(v, ours[k]) for k, v in model.state_dict().items())
    assert load_checkpoint(written[0])[1].channels != load_checkpoint(written[1])[1].channels
