"""The orchestrator: labels land on the input's own grid; known answers with a pointwise stand-in."""

import nibabel as nib
import numpy as np
import pytest
import torch

from medsegmamba.io import read_volume
from medsegmamba.labels import ASEG, HIPPOCAMPAL_SUBFIELDS, class_to_label
from medsegmamba.pipeline import conform as C
from medsegmamba.pipeline.hippocampus import hippocampus_box, segment_subfields
from medsegmamba.pipeline.segment import SegmentOptions, Segmenter

from pipeline_support import head_like, oblique_affine

ASEG_LABELS = set(class_to_label(ASEG).tolist())


def test_labels_on_the_inputs_own_grid(standin, write_nifti, tmp_path):
    """Oblique, anisotropic, non-LIA input: the label map has its shape and affine."""
    affine = oblique_affine()
    path = write_nifti(head_like((40, 36, 30)), affine)
    outputs = Segmenter(SegmentOptions(model=standin, device="cpu", step=32)).segment_file(path, tmp_path / "out")
    image = nib.load(outputs["labels"])
    assert image.shape == (40, 36, 30)
    np.testing.assert_allclose(image.affine, affine, atol=1e-5)
    labels = np.asarray(image.dataobj)
    assert set(np.unique(labels).tolist()) <= ASEG_LABELS
    inner = labels[6:-6, 6:-6, 6:-6]
    assert (inner != 0).mean() > 0.9  # the model sees the brain where the input has it
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["t1_aseg.nii.gz", "t1_qc.png", "t1_volumes.csv"]


def test_a_failing_writer_leaves_no_output(standin, write_nifti, tmp_path, monkeypatch):
    """The writers run side by side; when one fails (here the QC picture), its error comes out as
    it is and no output of the subject is left, neither finished files nor temporary ones, while an
    earlier subject's outputs stay as they were."""
    from medsegmamba import qc

    path = write_nifti(head_like((40, 36, 30)))
    segmenter = Segmenter(SegmentOptions(model=standin, device="cpu", step=32))
    result = segmenter.segment_volume(read_volume(path))
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("earlier")

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(qc, "save_qc_png", broken)
    from medsegmamba.pipeline.segment import output_paths

    with pytest.raises(OSError, match="disk full"):
        segmenter.write(result, read_volume(path), output_paths(path, out, segmenter.options))
    assert [p.name for p in out.iterdir()] == ["keep.txt"] and (out / "keep.txt").read_text() == "earlier"


def test_known_answer_end_to_end(standin, write_nifti, tmp_path):
    """1 mm RAS input: conformed is an exact permutation, the stand-in labels each voxel by its level.
    Without the mirrored pass: it would swap the stand-in's left and right classes."""
    data = head_like((40, 40, 40), seed=1)
    affine = np.eye(4)
    affine[:3, 3] = (-20, -20, -20)
    path = write_nifti(data, affine)
    options = SegmentOptions(model=standin, device="cpu", step=32, tta=False)
    result = Segmenter(options).segment_volume(read_volume(path))
    low, scale = C.intensity_scale(torch.from_numpy(data))  # as on the device: float32
    levels = C.scale_intensities(torch.from_numpy(data), low, scale).numpy()
    expected = class_to_label(ASEG)[np.round(levels / 255 * 31).astype(int)]
    np.testing.assert_array_equal(result.labels, expected)
    assert set(result.timings) >= {"conform", "predict", "native"}


def test_known_answer_can_fail(standin, write_nifti):
    """Sibling: the same check against a shifted input grid must not pass."""
    data = head_like((40, 40, 40), seed=1)
    affine = np.eye(4)
    path = write_nifti(data, affine)
    result = Segmenter(SegmentOptions(model=standin, device="cpu", step=32)).segment_volume(read_volume(path))
    low, scale = C.intensity_scale(data)
    expected = class_to_label(ASEG)[np.round(C.scale_intensities(data, low, scale) / 255 * 31).astype(int)]
    assert not np.array_equal(result.labels, np.roll(expected, 1, axis=0))


def test_hippocampus_box_by_hand():
    labels = np.zeros((256, 256, 256), np.int32)
    labels[100:110, 120:130, 140:150] = 17
    labels[150:160, 120:130, 140:150] = 53
    assert hippocampus_box(labels) == (130 - 48, 125 - 48, 145 - 48)
    assert hippocampus_box(torch.from_numpy(labels)) == (82, 77, 97)
    labels[:] = 0
    labels[0:3, 250:256, 5] = 17  # near the border: the box stays inside
    assert hippocampus_box(labels) == (0, 160, 0)
    assert hippocampus_box(np.zeros((256,) * 3)) is None


class RandomSubfields(torch.nn.Module):
    """A random 25-class network (no subfield weights exist)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv3d(1, 25, 3, padding=1)

    def forward(self, x):
        return torch.softmax(self.conv(x) * 10, dim=1)


def test_subfields_inside_the_box_only():
    image = torch.rand(256, 256, 256)
    labels = torch.zeros(256, 256, 256, dtype=torch.int32)
    labels[100:110, 120:130, 140:150] = 17
    out = segment_subfields(RandomSubfields(), image, labels)
    a, b, c = 105 - 48, 125 - 48, 145 - 48
    assert out[a:a + 96, b:b + 96, c:c + 96].ne(0).any()
    outside = out.clone()
    outside[a:a + 96, b:b + 96, c:c + 96] = 0
    assert not outside.any()
    assert set(out.unique().tolist()) <= {s.label for s in HIPPOCAMPAL_SUBFIELDS}


def test_segment_with_hippocampus_writes_subfields(standin, write_nifti, tmp_path):
    path = write_nifti(head_like((40, 40, 40)), oblique_affine())
    options = SegmentOptions(model=standin, device="cpu", step=32, hippocampus=RandomSubfields())
    outputs = Segmenter(options).segment_file(path, tmp_path)
    subfields = nib.load(outputs["subfields"])
    assert subfields.shape == (40, 40, 40)
    assert set(np.unique(np.asarray(subfields.dataobj)).tolist()) <= {s.label for s in HIPPOCAMPAL_SUBFIELDS}
    table = outputs["volumes"].read_text().splitlines()
    assert len(table) == 1 + 31 + 24 and table[-1].startswith("2226,")


def test_options_are_checked():
    with pytest.raises(ValueError, match="output_format"):
        SegmentOptions(output_format="png")
    with pytest.raises(ValueError, match="step"):
        SegmentOptions(step=17)


def test_wrong_class_count_is_a_model_error():
    from medsegmamba.errors import ModelError
    from pipeline_support import IntensityBins

    with pytest.raises(ModelError, match="gives 25 classes, expected 32"):
        Segmenter(SegmentOptions(model=IntensityBins(25), device="cpu"))
    with pytest.raises(ModelError, match="gives 32 classes, expected 25"):
        Segmenter(SegmentOptions(model=IntensityBins(32), device="cpu", hippocampus=IntensityBins(32)))
    with pytest.raises(ModelError, match=r"--locator \(aseg\) network gives 4 classes, expected 32"):
        Segmenter(SegmentOptions(model=IntensityBins(32), device="cpu", locator=IntensityBins(4)))


def test_aseg_labels_fit_the_uint8_map_segment_volume_returns():
    from medsegmamba.labels import ASEG, class_to_label

    assert max(class_to_label(ASEG)) <= 255  # segment_volume copies the native map off the device as uint8
