"""scripts/horn_ceiling.py on a 24^3 volume whose answers can be counted by hand."""

import nibabel as nib
import numpy as np
import pytest

LEFT_HORN, LEFT_HIPPO, RIGHT_HORN = 5, 17, 44


def row(table: str, prefix: str) -> list[str]:
    lines = [line for line in table.splitlines() if line.startswith(prefix)]
    assert len(lines) == 1, table
    return [cell.strip() for cell in lines[0].strip("|").split("|")]


@pytest.fixture
def volume():
    """A left horn of 2 x 4 x 4 = 32 voxels at T1 40 inside a hippocampus at T1 80; a right horn
    of 8 voxels at T1 40 in background at T1 80."""
    ref = np.zeros((24, 24, 24), np.int64)
    img = np.full(ref.shape, 80.0, np.float32)
    ref[4:12, 4:12, 4:12] = LEFT_HIPPO
    ref[7:9, 6:10, 6:10] = LEFT_HORN
    ref[16:18, 16:18, 16:18] = RIGHT_HORN
    img[ref == LEFT_HORN] = 40.0
    img[ref == RIGHT_HORN] = 40.0
    return ref, img


def test_oracle_finds_a_sharp_horn(load_script, volume):
    ref, img = volume
    table = load_script("scripts/horn_ceiling.py").oracle_table(ref, img)
    # every threshold from 60 up keeps exactly the 32 dark voxels, so Dice is 1 at each radius
    cells = row(table, "| left | 2 |")
    assert cells[2:8] == ["32 / 1.000"] * 6 and cells[8] == "1.000"
    assert row(table, "| right | 5 |")[2] == "8 / 1.000"


def test_oracle_sees_a_trough_wider_than_the_label(load_script, volume):
    """Darken the hippocampus voxels next to the left horn: the oracle now keeps them too."""
    ref, img = volume
    img[6, 6:10, 6:10] = 40.0  # 16 hippocampus voxels, one layer below the horn
    cells = row(load_script("scripts/horn_ceiling.py").oracle_table(ref, img), "| left | 2 |")
    assert cells[2] == "48 / 0.800"  # 2 * 32 / (48 + 32)


def test_prediction_names_what_it_adds(load_script, volume):
    ref, img = volume
    pred = ref.copy()
    pred[6, 6:10, 6:10] = LEFT_HORN  # 16 hippocampus voxels called horn
    pred[ref == RIGHT_HORN] = 0     # the right horn missed
    table = load_script("scripts/horn_ceiling.py").prediction_table(ref, img, pred)
    left = row(table, "| left |")
    assert left[1:4] == ["32", "48", "0.800"]
    assert left[4] == "Left-Hippocampus 16, 80/80/80"
    assert row(table, "| right |")[1:4] == ["8", "0", "0.000"]


def test_main_reads_the_two_files(load_script, volume, tmp_path, capsys):
    ref, img = volume
    nib.save(nib.MGHImage(ref.astype(np.int32), np.eye(4)), str(tmp_path / "aseg.mgz"))
    nib.save(nib.MGHImage(img.astype(np.uint8), np.eye(4)), str(tmp_path / "orig.mgz"))
    assert load_script("scripts/horn_ceiling.py").main([str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert row(out, "| left | 40/40/40 |")  # the horn's T1 percentiles
    assert "| left | 2 | 32 / 1.000 |" in out
