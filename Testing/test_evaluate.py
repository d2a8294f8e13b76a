import numpy as np
import nibabel as nib
import pytest

from medsegmamba import evaluate as ev


def cube(shape=(24, 24, 24), lo=(5, 5, 5), size=10):
    m = np.zeros(shape, bool)
    m[lo[0]:lo[0] + size, lo[1]:lo[1] + size, lo[2]:lo[2] + size] = True
    return m


def ball(r, n=32):
    idx = np.indices((n, n, n)) - (n - 1) / 2
    return np.sqrt((idx ** 2).sum(0)) <= r


def test_identical():
    m = ev.mask_metrics(ball(8), ball(8))
    assert m == {"dsc": 1.0, "vs": 1.0, "assd": 0.0, "hd95": 0.0}


def test_cubes_offset_by_one():
    m = ev.mask_metrics(cube(lo=(5, 5, 5)), cube(lo=(6, 5, 5)))
    assert m["dsc"] == pytest.approx(2 * 900 / 2000)
    assert m["vs"] == 1.0
    assert 0 < m["assd"] < 1 and m["hd95"] == pytest.approx(1.0)


def test_single_voxels_with_spacing():
    a = np.zeros((10, 10, 10), bool)
    b = a.copy()
    a[5, 5, 2], b[5, 5, 5] = True, True
    m = ev.mask_metrics(a, b, spacing=(1.0, 1.0, 2.0))
    assert m["dsc"] == 0 and m["vs"] == 1
    assert m["assd"] == pytest.approx(6.0) and m["hd95"] == pytest.approx(6.0)


def test_volume_similarity():
    a = cube(size=10)
    b = np.zeros_like(a)
    b[5:10, 5:15, 5:15] = True  # 500 voxels inside a's 1000
    m = ev.mask_metrics(a, b)
    assert m["vs"] == pytest.approx(1 - 500 / 1500) and m["dsc"] == pytest.approx(1000 / 1500)


def test_concentric_balls():
    m = ev.mask_metrics(ball(10), ball(8))
    assert m["assd"] == pytest.approx(2.0, abs=0.4) and m["hd95"] == pytest.approx(2.0, abs=0.6)


def test_empty_cases():
    z = np.zeros((12, 12, 12), bool)
    assert all(np.isnan(v) for v in ev.mask_metrics(z, z).values())
    m = ev.mask_metrics(z, cube((12, 12, 12), (1, 1, 1), 3))
    assert m["dsc"] == 0 and m["vs"] == 0 and np.isnan(m["assd"])


def test_edt_matches_brute_force():
    g = np.random.default_rng(0)
    for _ in range(3):
        a, b = g.random((12, 12, 12)) > 0.7, g.random((12, 12, 12)) > 0.6
        sp = (1.0, 1.5, 0.7)
        fast, ref = ev.surface_distances(a, b, sp), ev.surface_distances_ref(a, b, sp)
        for f, r in zip(fast, ref):
            assert np.allclose(f, r)


def test_shape_mismatch():
    with pytest.raises(ValueError, match="shape"):
        ev.label_metrics(np.zeros((3, 3, 3)), np.zeros((3, 3, 4)), [1], (1, 1, 1))


def _save(path, data):
    nib.save(nib.Nifti1Image(data.astype(np.int16), np.eye(4)), str(path))


def test_command_folders_and_compare(tmp_path):
    (tmp_path / "ref").mkdir(), (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    for i in range(6):
        ref = np.zeros((20, 20, 20), np.int16)
        ref[4:12, 4:12, 4:12] = 17
        ref[12:16, 4:12, 4:12] = 53
        good = ref.copy()
        bad = np.roll(ref, 2 + i % 2, axis=1)  # clearly worse in every subject
        for d, v in (("ref", ref), ("a", good), ("b", bad)):
            _save(tmp_path / d / f"s{i}.nii.gz", v)
    args = type("A", (), dict(pred=str(tmp_path / "a"), ref=str(tmp_path / "ref"),
                              compare=str(tmp_path / "b"), out=str(tmp_path / "o"), labels="17,53"))
    assert ev.run(args) == 0
    md = (tmp_path / "o/summary.md").read_text()
    assert "Left-Hippocampus" in md and "1.000 ± 0.000" in md and "*)" in md
    rows = list(open(tmp_path / "o/metrics.csv"))
    assert len(rows) == 1 + 6 * 2


def test_wilcoxon_not_significant_for_same():
    x = np.array([0.8, 0.7, 0.9, 0.85])
    assert np.isnan(ev.wilcoxon_p(x, x))
    assert ev.wilcoxon_p(x, x - np.array([0.1, 0.01, 0.05, 0.2])) > 0.05  # n=4: p >= 0.125


def test_method_names_tell_two_runs_apart():
    from medsegmamba.evaluate import method_names

    assert method_names("run/a.nii.gz", "run/b.nii.gz") == ("a.nii.gz", "b.nii.gz")
    # two runs of the same command: the same file name in different folders
    assert method_names("new/out/orig_aseg.nii.gz", "old/out/orig_aseg.nii.gz") == (
        "new/out/orig_aseg.nii.gz", "old/out/orig_aseg.nii.gz")
    assert method_names("preds", None) == ("preds", "")
