"""scripts/distill_experiment.py's CPU smoke mode, on a made-up head: trains an arm at batch 2,
resumes it, and writes the table, so that a device call does not fail on what the CPU can catch.
About a minute on 2 cores, so marked slow: `python3 -m pytest -m slow Testing/distill`."""

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
