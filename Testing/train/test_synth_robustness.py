"""scripts/synth_robustness.py end to end on two tiny label maps with the shipped default weights."""

import importlib.util
from pathlib import Path

import nibabel as nib
import numpy as np

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "synth_robustness.py"


def load_script():
    spec = importlib.util.spec_from_file_location("synth_robustness", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_robustness_table(tmp_path, make_blob_map):
    maps = tmp_path / "maps"
    maps.mkdir()
    for i in range(2):
        nib.save(nib.Nifti1Image(make_blob_map(40, i).astype(np.uint16), np.eye(4)), str(maps / f"m{i}.nii.gz"))
    out = tmp_path / "table.md"
    assert load_script().main([str(maps), "--sigmas", "0,2", "--patches", "1", "--out", str(out)]) == 0
    text = out.read_text()
    assert text.startswith("# `default` on blurrier images")
    assert "| structure | Dice, σ 0 mm | Dice, σ 2 mm | volume ratio, σ 0 mm | volume ratio, σ 2 mm |" in text
    rows = [line for line in text.splitlines() if line.startswith("| ") and "σ" not in line]
    assert rows[0].startswith("| **mean** |")
    dice = [float(v.strip(" *")) for row in rows for v in row.split("|")[2:4]]
    assert dice and all(0.0 <= v <= 1.0 for v in dice)
    ratios = [float(v) for row in rows[1:] for v in row.split("|")[4:6]]
    assert ratios and all(v >= 0.0 for v in ratios)


def test_robustness_counts_are_pooled_over_patches():
    """A model that always answers class 1 against targets that are all class 1 or all class 0."""
    import torch

    module = load_script()

    class One(torch.nn.Module):
        def forward_logits(self, x):
            logits = torch.zeros(x.shape[0], 32, *x.shape[2:])
            logits[:, 1] = 1.0
            return logits

    class Gen:
        def __init__(self):
            self.targets = [torch.ones(1, 2, 2, 2, dtype=torch.long), torch.zeros(1, 2, 2, 2, dtype=torch.long)]

        def sample(self, b):
            return torch.rand(1, 1, 2, 2, 2), self.targets.pop(0)

    dice, pred_counts, ref_counts = module.robustness(One(), Gen(), 2, [0.0])
    dice = dice[0.0]
    assert ref_counts[0] == ref_counts[1] == 8 and ref_counts[2:].sum() == 0
    assert pred_counts[0.0][1] == 16 and pred_counts[0.0].sum() == 16
    # class 1: 8 true positives, 16 predicted, 8 in the targets -> 2 * 8 / 24; class 0: never predicted
    assert np.isclose(dice[1], 2 / 3) and dice[0] == 0.0 and np.isnan(dice[5])


def test_ilv_erode_thins_the_horns_of_the_same_patches(tmp_path, make_blob_map):
    """--ilv-erode 1 against a share too small ever to erode (1e-9), which draws the same random
    numbers: the same patch, with the horn one voxel layer thinner and nothing else changed."""
    from medsegmamba.labels import class_to_label

    maps = tmp_path / "maps"
    maps.mkdir()
    m = make_blob_map(40, 0)
    m[6:18, 16:23, 16:23] = 5  # a left inferior lateral ventricle, 12 x 7 x 7, in white matter
    nib.save(nib.Nifti1Image(m.astype(np.uint16), np.eye(4)), str(maps / "m0.nii.gz"))
    horns = np.flatnonzero(np.isin(class_to_label(), (5, 44)))  # either side: the patch may be mirrored
    module = load_script()
    targets = [module.generator(maps, seed=7, ilv_erode=p).sample(1)[1].numpy() for p in (1e-9, 1.0)]
    kept, thinned = (np.isin(t, horns) for t in targets)
    assert kept.sum() > 0
    assert 0 < thinned.sum() < kept.sum()
    changed = targets[0] != targets[1]
    assert np.array_equal(changed, kept & ~thinned)  # only horn voxels changed, and every lost one did


def test_ilv_erode_outside_0_1_is_one_line(tmp_path, capsys):
    import pytest

    with pytest.raises(SystemExit) as stop:
        load_script().main([str(tmp_path), "--ilv-erode", "2"])
    assert stop.value.code == 2
    assert capsys.readouterr().err.strip().endswith("--ilv-erode is a share of the patches, from 0 to 1, got 2")
