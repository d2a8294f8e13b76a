"""Volume table and the QC picture."""

import numpy as np

from medsegmamba import qc, stats
from medsegmamba.labels import ASEG


def test_volume_table_by_hand():
    labels = np.zeros((4, 4, 4), np.int32)
    labels[0, 0, :3] = 17
    labels[1, 1, 1] = 53
    labels[2, 2, 2] = 999  # not a structure: not counted
    affine = np.diag([2.0, 1.5, 1.0, 1.0])
    rows = {r.label: r for r in stats.volume_table(labels, affine)}
    assert len(rows) == len(ASEG) - 1 and 0 not in rows
    assert (rows[17].voxels, rows[17].volume_mm3, rows[17].name) == (3, 9.0, "Left-Hippocampus")
    assert rows[53].volume_mm3 == 3.0 and rows[4].voxels == 0
    csv = stats.table_csv(list(rows.values())).splitlines()
    assert csv[0] == "label,name,voxels,volume_mm3" and "17,Left-Hippocampus,3,9.000" in csv


def test_voxel_volume_of_oblique_affine():
    angle = 0.4
    rotation = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
    affine = np.eye(4)
    affine[:3, :3] = rotation @ np.diag([1.2, 0.9, 1.5])
    assert abs(stats.voxel_volume(affine) - 1.62) < 1e-12


def test_qc_png(tmp_path):
    image = np.random.default_rng(0).random((256, 256, 256)).astype(np.float32)
    labels = np.zeros((256, 256, 256), np.int32)
    labels[100:140, 110:130, 120:160] = 17
    images, label_slices = qc.orthogonal_slices(image, labels)
    assert [s.shape for s in images] == [(256, 256)] * 3
    assert all((s == 17).any() for s in label_slices)  # every cut passes through the structure
    rgb = qc.overlay(images[0], label_slices[0])
    assert rgb.shape == (256, 256, 3) and np.allclose(rgb[label_slices[0] == 17].max(0)[:2], rgb[label_slices[0] == 17].min(0)[:2], atol=0.6)
    path = tmp_path / "qc.png"
    qc.save_qc_png(images, label_slices, path, title="t1")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
