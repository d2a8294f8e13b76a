"""Volume table and the QC picture."""

import numpy as np
import pytest
from PIL import Image

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


@pytest.mark.parametrize("dtype", [np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint64, np.float32])
def test_volume_table_matches_counting_by_hand(dtype):
    """volume_table against a per-structure count (its twin) on random maps of every label dtype,
    with and without values outside the table (negative, past the largest label)."""
    rng = np.random.default_rng(int(np.dtype(dtype).itemsize))
    pool = [s.label for s in ASEG][:12]
    for extra in ([], [1000], [-3] if np.dtype(dtype).kind != "u" else [255]):
        labels = rng.choice(pool + extra, size=(7, 6, 5)).astype(dtype)
        rows = stats.volume_table(labels, np.eye(4))
        assert [r.voxels for r in rows] == [int((labels == s.label).sum()) for s in ASEG if s.label != 0]


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.int64, np.uint16, np.uint32])
def test_direct_counts_match_np_bincount(dtype):
    """direct_counts' torch path (uint8 and the signed types) and numpy path against np.bincount."""
    rng = np.random.default_rng(3)
    flat = rng.integers(0, 100, 10_001).astype(dtype)
    counts = stats.direct_counts(flat, 127, 128)
    assert counts.shape == (128,) and np.array_equal(counts, np.bincount(flat.astype(np.int64), minlength=128))
    assert stats.direct_counts(flat, 50) is None  # values past `top`: the caller masks them


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
    with Image.open(path) as png:
        assert png.format == "PNG" and png.mode == "RGB"
        assert png.width >= 3 * 256 and png.height >= 256
        picture = np.asarray(png)
    tops = []
    for image_slice, label_slice in zip(images, label_slices):
        expected = np.rint(qc.overlay(image_slice, label_slice) * 255)
        [(top, left)] = _places(picture, expected)  # each panel once, unscaled, as overlay draws it
        tops.append(top)
        region = picture[top:top + 256, left:left + 256].astype(int)
        drawn = label_slice == 17
        assert np.abs(region - expected).max() <= 1
        # label 17's colour is really there: the same pixels without the overlay do not match
        grey = np.rint(qc.overlay(image_slice, np.zeros_like(label_slice)) * 255)
        assert np.abs(region[drawn] - grey[drawn]).max() > 1
    assert (picture[:min(tops)] > 200).any()  # white names and title above the panels


def _places(picture: np.ndarray, panel: np.ndarray, tolerance: int = 1) -> list[tuple[int, int]]:
    """(top, left) of every place where `panel` (H, W, 3) lies in `picture` within `tolerance`."""
    h, w = panel.shape[:2]
    picture = picture.astype(int)
    rows, cols = picture.shape[0] - h + 1, picture.shape[1] - w + 1
    near = np.ones((max(rows, 0), max(cols, 0)), bool)
    for y, x in [(0, 0), (0, w - 1), (h - 1, 0), (h - 1, w - 1), (h // 2, w // 2)]:  # cheap sieve first
        near &= np.abs(picture[y:y + rows, x:x + cols] - panel[y, x]).max(-1) <= tolerance
    return [(int(t), int(l)) for t, l in zip(*near.nonzero())
            if np.abs(picture[t:t + h, l:l + w] - panel).max() <= tolerance]


def test_qc_png_enlarges_small_slices(tmp_path):
    images = [np.arange(64 * 64, dtype=np.float32).reshape(64, 64)] * 3
    labels = [np.pad(np.full((2, 2), 17), 31)] * 3
    path = tmp_path / "qc.png"
    qc.save_qc_png(images, labels, path)
    picture = np.asarray(Image.open(path))
    panel = np.rint(qc.overlay(images[0], labels[0]) * 255).repeat(4, 0).repeat(4, 1)  # nearest, x4
    assert len(_places(picture, panel)) == 3


def test_overlay_by_hand():
    rgb = qc.overlay(np.array([[0.0, 2.0, 1.0]]), np.array([[17, 0, 999]]))
    assert np.allclose(rgb[0, 0], 0.5 * np.array([220, 216, 20]) / 255)  # Left-Hippocampus on black
    assert np.allclose(rgb[0, 1:], [[1, 1, 1], [0.5, 0.5, 0.5]])  # background and unknown labels: grey


def test_overlay_equals_its_loop():
    rng = np.random.default_rng(1)
    known = np.array(sorted(qc._colour_lut()))
    for shape, alpha in [((37, 53), 0.5), ((256, 256), 0.3), ((1, 7), 1.0)]:
        image = rng.normal(size=shape) * 40 + 100
        labels = rng.choice(np.concatenate([known, [0, -3, 1, 999, 100000]]), size=shape)
        fast, slow = qc.overlay(image, labels, alpha), qc.overlay_ref(image, labels, alpha)
        error = np.abs(fast - slow)
        print(f"overlay vs loop {shape}: max {error.max():.3g} mean {error.mean():.3g}")
        assert np.array_equal(fast, slow)
    flat = np.full((5, 5), 3.0)  # no contrast: grey 0, labels still drawn
    assert np.array_equal(qc.overlay(flat, np.full((5, 5), 53)), qc.overlay_ref(flat, np.full((5, 5), 53)))


def test_save_qc_png_needs_three_slices(tmp_path):
    with pytest.raises(ValueError, match="expected 3"):
        qc.save_qc_png([np.zeros((4, 4))] * 2, [np.zeros((4, 4), int)] * 2, tmp_path / "qc.png")
