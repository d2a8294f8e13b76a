"""Reading and checking inputs; atomic writes."""

import gzip

import nibabel as nib
import nrrd
import numpy as np
import pytest

from medsegmamba import io
from medsegmamba.errors import InputError, OutputError


def _nifti(tmp_path, data, name="t1.nii.gz", affine=None):
    path = tmp_path / name
    nib.save(nib.Nifti1Image(np.asarray(data), np.eye(4) if affine is None else affine), path)
    return path


def _brain(shape=(8, 9, 10)):
    return np.random.default_rng(0).uniform(1, 100, shape).astype(np.float32)


def test_reads_nifti_and_mgz(tmp_path):
    affine = np.diag([2.0, 1.0, 3.0, 1.0])
    volume = io.read_volume(_nifti(tmp_path, _brain().astype(np.int16), affine=affine))
    assert volume.data.dtype == np.int16 and volume.data.shape == (8, 9, 10)  # kept: conform casts
    np.testing.assert_allclose(volume.zooms, [2, 1, 3])
    mgz = tmp_path / "t1.mgz"
    nib.save(nib.MGHImage(_brain(), affine), mgz)
    np.testing.assert_allclose(io.read_volume(mgz).affine, affine)


@pytest.mark.parametrize("dtype, kept", [(np.uint8, np.uint8), (np.int16, np.int16), (np.uint16, np.float32),
                                         (np.int32, np.float32), (np.float64, np.float32)])
def test_integer_voxels_are_kept_and_conform_the_same(tmp_path, dtype, kept):
    """uint8 and int16 voxels stay as stored (conform casts them on the device); every type
    conforms to the same image as its float32 copy."""
    from medsegmamba.pipeline.conform import conform

    data = _brain((20, 18, 16)).astype(dtype)
    affine = np.diag([1.3, 1.0, 0.9, 1.0])
    volume = io.read_volume(_nifti(tmp_path, data, affine=affine))
    assert volume.data.dtype == kept
    plain = io.Volume(data.astype(np.float32), volume.affine, volume.path)
    assert np.array_equal(conform(volume).image.numpy(), conform(plain).image.numpy())


def test_nrrd_lps_becomes_ras(tmp_path):
    path = tmp_path / "t1.nrrd"
    header = {"space": "left-posterior-superior", "space directions": np.diag([1.5, 2.0, 1.0]),
              "space origin": np.array([10.0, 20.0, 30.0])}
    nrrd.write(str(path), _brain(), header)
    volume = io.read_volume(path)
    np.testing.assert_allclose(volume.affine, [[-1.5, 0, 0, -10], [0, -2, 0, -20], [0, 0, 1, 30], [0, 0, 0, 1]])


def test_4d_with_one_volume_is_fine(tmp_path):
    assert io.read_volume(_nifti(tmp_path, _brain((8, 9, 10, 1)))).data.shape == (8, 9, 10)


def _truncated(tmp_path):
    full = _nifti(tmp_path, _brain((30, 30, 30)), name="full.nii.gz")
    path = tmp_path / "cut.nii.gz"
    path.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    return path


def _not_an_image(tmp_path):
    path = tmp_path / "notes.nii.gz"
    path.write_bytes(gzip.compress(b"this is not an image" * 10))
    return path


BAD = {
    "missing": (lambda p: p / "absent.nii.gz", "no such file"),
    "not an image": (_not_an_image, "not a readable image"),
    "text file": (lambda p: (p / "t1.txt").write_text("x") and p / "t1.txt", "unsupported file type"),
    "truncated": (_truncated, "truncated or corrupt"),
    "2D": (lambda p: _nifti(p, _brain((8, 9))), "expected a 3D image, got a 2D image of shape (8, 9)"),
    "single slice": (lambda p: _nifti(p, _brain((8, 9, 1))), "2D image"),
    "4D": (lambda p: _nifti(p, _brain((8, 9, 10, 3))), "expected a 3D image, got shape (8, 9, 10, 3) with 3 volumes"),
    "NaN": (lambda p: _nifti(p, np.where(_brain() > 50, np.nan, _brain())), "NaN or infinite"),
    "Inf": (lambda p: _nifti(p, np.where(_brain() > 90, np.inf, _brain())), "NaN or infinite"),
    "all zero": (lambda p: _nifti(p, np.zeros((8, 9, 10), np.float32)), "all voxels are 0"),
    "constant": (lambda p: _nifti(p, np.full((8, 9, 10), 7, np.int16)), "constant (every voxel is 7)"),
    "folder": (lambda p: p, "is a folder"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_inputs_name_file_and_problem(tmp_path, case):
    make, problem = BAD[case]
    path = make(tmp_path)
    with pytest.raises(InputError) as caught:
        io.read_volume(path)
    assert str(caught.value).startswith(f"{path}: ")
    assert problem in str(caught.value)


def test_atomic_write_keeps_existing_and_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "labels.nii.gz"
    io.write_labels(np.ones((3, 3, 3), np.int32), np.eye(4), target)
    assert nib.load(target).get_data_dtype() == np.uint8
    with pytest.raises(OutputError, match="already exists"):
        io.write_labels(np.zeros((3, 3, 3), np.int32), np.eye(4), target)
    assert np.asarray(nib.load(target).dataobj).max() == 1
    with pytest.raises(RuntimeError):
        with io.atomic_outputs([tmp_path / "a.csv", tmp_path / "b.png"]) as temps:
            assert all(t.startswith(str(tmp_path)) for t in temps)
            raise RuntimeError("crash while writing")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["labels.nii.gz"]
    io.write_text("x\n", target.with_suffix(".csv"))
    io.write_labels(np.zeros((3, 3, 3), np.int32), np.eye(4), target, overwrite=True)
    assert np.asarray(nib.load(target).dataobj).max() == 0


def test_mgz_labels(tmp_path):
    io.write_labels(np.full((3, 3, 3), 2226), np.eye(4), tmp_path / "a.mgz")
    assert np.asarray(nib.load(tmp_path / "a.mgz").dataobj).max() == 2226


def test_output_folder_that_cannot_be_made(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(OutputError, match="cannot create the output folder"):
        io.prepare_output_dir(blocker / "out")
    with pytest.raises(OutputError, match="not a folder"):
        io.prepare_output_dir(blocker)


def test_stem():
    assert io.stem("/a/sub-01_T1w.nii.gz") == "sub-01_T1w"
    assert io.stem("x.mgz") == "x" and io.stem("x.NRRD") == "x"


@pytest.mark.parametrize("values, dtype", [((0, 77), np.uint8), ((0, 255), np.uint8), ((0, 256), np.int16),
                                           ((0, 2226), np.int16), ((-1, 5), np.int16), ((), np.uint8)])
def test_label_maps_are_stored_in_the_smallest_type_that_holds_them(tmp_path, values, dtype):
    labels = np.zeros((4, 5, 6), np.int32)
    labels.flat[:len(values)] = values
    target = tmp_path / "labels.nii.gz"
    io.write_labels(labels, np.eye(4), target)
    image = nib.load(target)
    assert image.get_data_dtype() == dtype
    np.testing.assert_array_equal(np.asarray(image.dataobj), labels)  # nothing clipped or wrapped
