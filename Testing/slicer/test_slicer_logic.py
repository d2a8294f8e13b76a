"""MedSegMambaLogic headless with slicer-core: process, volume table, cancel, errors.

The segmenter is a stand-in script (fake_segmenter.py) that writes a known label map the way the
CLI does; one test runs the real CLI with a tiny model when the package provides it.
"""

import argparse
import importlib.util
import os
import sys
import time

import numpy as np
import pytest

from slicer_support import HERE, SLICER_MISSING

slicer = pytest.importorskip("slicer", reason=SLICER_MISSING)
import vtk  # noqa: E402  (comes with slicer-core)

FAKE = [sys.executable, os.path.join(HERE, "fake_segmenter.py")]
SPACING = (1.0, 1.25, 0.8)


def makeVolume(scene, shape=(40, 40, 40)):
    """A 40^3 image: a bright box; IJK->RAS with spacing, a flip and an offset, like a real scan."""
    import slicer.util

    image = np.zeros(shape, np.float32)  # numpy order (K, J, I)
    image[8:32, 10:30, 6:34] = 100.0
    volume = slicer.util.addVolumeFromArray(image, name="T1")
    matrix = vtk.vtkMatrix4x4()
    matrix.SetElement(0, 0, -SPACING[0])
    matrix.SetElement(1, 1, SPACING[1])
    matrix.SetElement(2, 2, SPACING[2])
    for row, offset in enumerate((20.0, -15.0, 7.5)):
        matrix.SetElement(row, 3, offset)
    volume.SetIJKToRASMatrix(matrix)
    return volume, image


def expectedLabels(image):
    """What fake_segmenter.py writes, in numpy (K, J, I) order."""
    labels = np.zeros(image.shape, np.int16)
    bright = image > image.mean()
    half = image.shape[2] // 2  # the script's first axis is I
    labels[:, :, :half][bright[:, :, :half]] = 17
    labels[:, :, half:][bright[:, :, half:]] = 53
    labels[:4, :4, :4] = 10
    return labels


def logicWith(command):
    from MedSegMamba import MedSegMambaLogic

    logic = MedSegMambaLogic()
    logic.segmenterCommand = command
    return logic


def segmentsByName(segmentation):
    seg = segmentation.GetSegmentation()
    return {seg.GetSegment(s).GetName(): s for s in seg.GetSegmentIDs()}


def matrixOf(node_or_image, getter):
    m = vtk.vtkMatrix4x4()
    getattr(node_or_image, getter)(m)
    return np.array([[m.GetElement(r, c) for c in range(4)] for r in range(4)])


def test_process_names_colours_surfaces_geometry(slicerScene):
    from medsegmamba.labels import by_label

    volume, image = makeVolume(slicerScene)
    progress = []
    segmentation = logicWith(FAKE).process(volume, onProgress=lambda s, f: progress.append((s, f)), timeout=120)

    assert segmentation.IsA("vtkMRMLSegmentationNode")
    names = segmentsByName(segmentation)
    assert set(names) == {"Left-Thalamus", "Left-Hippocampus", "Right-Hippocampus"}
    table = by_label()
    for name, segmentId in names.items():
        segment = segmentation.GetSegmentation().GetSegment(segmentId)
        rgb = next(s.rgb for s in table.values() if s.name == name)
        assert np.allclose(segment.GetColor(), np.array(rgb) / 255.0, atol=1e-3), name
        surface = segmentation.GetClosedSurfaceInternalRepresentation(segmentId)
        assert surface is not None and surface.GetNumberOfPoints() > 0, name
    # Geometry: the segment labelmaps lie on the input's grid, voxel for voxel.
    expected = expectedLabels(image)
    for label, name in ((10, "Left-Thalamus"), (17, "Left-Hippocampus"), (53, "Right-Hippocampus")):
        mask = slicer.util.arrayFromSegmentBinaryLabelmap(segmentation, names[name], volume)
        assert mask.shape == image.shape
        np.testing.assert_array_equal(mask > 0, expected == label, err_msg=name)
    image_data = slicer.vtkOrientedImageData()
    slicer.vtkSlicerSegmentationsModuleLogic.GetSegmentBinaryLabelmapRepresentation(segmentation, names["Left-Hippocampus"], image_data, False)
    np.testing.assert_allclose(matrixOf(image_data, "GetImageToWorldMatrix"), matrixOf(volume, "GetIJKToRASMatrix"), atol=1e-5)
    stages = [s for s, _ in progress]
    assert stages[0] == "conform" and stages[-1] == "write", progress


def test_volume_table_counts_and_follows_edits(slicerScene):
    volume, image = makeVolume(slicerScene)
    logic = logicWith(FAKE)
    segmentation = logic.process(volume, timeout=120)
    expected = expectedLabels(image)
    voxel = float(np.prod(SPACING))

    table = logic.volumeTable(segmentation)
    assert [table.GetColumnName(c) for c in range(table.GetNumberOfColumns())] == ["Segment", "Label", "Voxels", "Volume mm3", "Volume cm3"]
    rows = {table.GetCellText(r, 0): r for r in range(table.GetNumberOfRows())}
    assert set(rows) == {"Left-Thalamus", "Left-Hippocampus", "Right-Hippocampus"}
    for name, label in (("Left-Thalamus", 10), ("Left-Hippocampus", 17), ("Right-Hippocampus", 53)):
        r = rows[name]
        count = int((expected == label).sum())
        assert int(table.GetCellText(r, 1)) == label
        assert int(table.GetCellText(r, 2)) == count
        assert float(table.GetCellText(r, 3)) == pytest.approx(count * voxel, rel=1e-6)
        assert float(table.GetCellText(r, 4)) == pytest.approx(count * voxel / 1000, rel=1e-6)

    # Edit: erase half of Right-Hippocampus, as Segment Editor would; the table must follow.
    segmentId = segmentsByName(segmentation)["Right-Hippocampus"]
    mask = slicer.util.arrayFromSegmentBinaryLabelmap(segmentation, segmentId, volume)
    edited = mask.copy()
    edited[: mask.shape[0] // 2] = 0
    slicer.util.updateSegmentBinaryLabelmapFromArray(edited, segmentation, segmentId, volume)
    table = logic.volumeTable(segmentation, table)
    rows = {table.GetCellText(r, 0): r for r in range(table.GetNumberOfRows())}
    newCount = int(table.GetCellText(rows["Right-Hippocampus"], 2))
    assert newCount == int((edited > 0).sum())
    assert newCount < int((expected == 53).sum())


def test_export_statistics_writes_csv(slicerScene, tmp_path):
    volume, image = makeVolume(slicerScene)
    logic = logicWith(FAKE)
    segmentation = logic.process(volume, timeout=120)
    path = logic.exportStatistics(segmentation, str(tmp_path / "volumes.csv"))
    lines = open(path).read().splitlines()
    assert [c.strip('"') for c in lines[0].split(",")][:3] == ["Segment", "Label", "Voxels"]
    assert len(lines) == 4


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); it is dead for our purpose.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.skipif(sys.platform == "win32", reason="checks process groups the POSIX way")
def test_cancel_kills_tree_and_adds_no_node(slicerScene):
    volume, _ = makeVolume(slicerScene)
    before = slicerScene.GetNumberOfNodes()
    finished = []
    logic = logicWith(FAKE)
    assert logic.process(volume, model="sleep:600", wait=False, onFinished=lambda s, e: finished.append((s, e))) is None
    job = logic._job
    pidFile = os.path.join(job.workDir, "grandchild.pid")
    deadline = time.monotonic() + 60
    while not os.path.exists(pidFile) or not open(pidFile).read():
        assert time.monotonic() < deadline, "the stand-in segmenter did not start"
        logic.poll()
        time.sleep(0.05)
    grandchild = int(open(pidFile).read())
    child = job.process.pid
    assert logic.isRunning and _alive(child) and _alive(grandchild)

    logic.cancel()

    assert not logic.isRunning
    assert finished == [(None, logic.CANCELLED)]
    assert job.process.process.returncode is not None
    deadline = time.monotonic() + 10
    while _alive(grandchild) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(grandchild), "the grandchild survived Cancel"
    assert not os.path.exists(job.workDir)
    assert slicerScene.GetNumberOfNodes() == before
    assert slicerScene.GetNumberOfNodesByClass("vtkMRMLSegmentationNode") == 0


def test_error_is_reported_with_log_and_no_node(slicerScene):
    volume, _ = makeVolume(slicerScene)
    before = slicerScene.GetNumberOfNodes()
    logic = logicWith(FAKE)
    with pytest.raises(RuntimeError, match="model file is broken") as info:
        logic.process(volume, model="fail", timeout=120)
    assert "fake segmenter starting" in str(info.value)
    assert "fake segmenter starting" in logic.lastLog
    assert slicerScene.GetNumberOfNodes() == before


def test_bad_arguments_name_the_argument(slicerScene):
    volume, _ = makeVolume(slicerScene)
    logic = logicWith(FAKE)
    with pytest.raises(ValueError, match="step"):
        logic.process(volume, step=20)
    with pytest.raises(ValueError, match="device"):
        logic.process(volume, device="tpu")
    with pytest.raises(ValueError, match="tiling: expected one of"):
        logic.process(volume, tiling="sparse")
    with pytest.raises(ValueError, match="inputVolume"):
        logic.process(None)
    with pytest.raises(ValueError, match="tta: expected True or False, got 'yes'"):
        logic.process(volume, tta="yes")


def test_command_line_matches_the_cli_contract():
    from MedSegMamba import MedSegMambaLogic

    command = MedSegMambaLogic().buildCommand("in.nii.gz", "out", "default", "cuda", 16, True)
    assert command[1:3] == ["-m", "medsegmamba.cli"]
    assert command[3:] == ["segment", "in.nii.gz", "-o", "out", "--model", "default", "--device", "cuda",
                           "--step", "16", "--tiling", "focused", "--progress", "json", "--overwrite",
                           "--hippocampus", "default", "--tta"]
    full = MedSegMambaLogic().buildCommand("in.nii.gz", "out", "default", "cpu", 16, False, tiling="full")
    assert full[full.index("--tiling") + 1] == "full"


def test_tta_flag_is_said_exactly_once_either_way():
    """On by default, as in the CLI; the command says --tta or --no-tta, so it does not rest on
    the CLI's default."""
    from MedSegMamba import MedSegMambaLogic

    logic = MedSegMambaLogic()
    default = logic.buildCommand("in.nii.gz", "out", "default", "cpu", 32, False)
    assert default == logic.buildCommand("in.nii.gz", "out", "default", "cpu", 32, False, tta=True)
    plain = logic.buildCommand("in.nii.gz", "out", "default", "cpu", 32, False, tta=False)
    assert default.count("--tta") == 1 and "--no-tta" not in default
    assert plain.count("--no-tta") == 1 and "--tta" not in plain
    assert [a for a in plain if a != "--no-tta"] == [a for a in default if a != "--tta"]


@pytest.mark.parametrize("tta", [False, True])
def test_the_real_cli_parses_the_command(tta):
    cli = pytest.importorskip("medsegmamba.cli", reason="medsegmamba.cli is not installed")
    from MedSegMamba import MedSegMambaLogic

    command = MedSegMambaLogic().buildCommand("in.nii.gz", "out", "default", "cpu", 16, False, "full", tta)
    assert command[3] == "segment"
    parser = argparse.ArgumentParser()
    cli.add_segment_arguments(parser)
    args = parser.parse_args(command[4:])
    assert (args.tta, args.step, args.tiling, args.progress) == (tta, 16, "full", "json")


def test_process_passes_tta_to_the_segmenter(slicerScene):
    volume, image = makeVolume(slicerScene)
    logic = logicWith(FAKE)
    plain = logic.process(volume, tta=False, timeout=120)
    assert "fake segmenter options: tta=off" in logic.lastLog.splitlines()
    mirrored = logic.process(volume, timeout=120)  # the default
    assert "fake segmenter options: tta=on" in logic.lastLog.splitlines()
    assert mirrored is not plain
    assert set(segmentsByName(mirrored)) == {"Left-Thalamus", "Left-Hippocampus", "Right-Hippocampus"}
    names = segmentsByName(mirrored)
    mask = slicer.util.arrayFromSegmentBinaryLabelmap(mirrored, names["Left-Hippocampus"], volume)
    np.testing.assert_array_equal(mask > 0, expectedLabels(image) == 17)


def test_every_quality_choice_is_a_valid_step_and_tiling():
    from MedSegMamba import QUALITIES, STEPS, TILINGS

    assert set(QUALITIES) == {"fast", "best", "paper"}
    assert all(step in STEPS and tiling in TILINGS for step, tiling in QUALITIES.values())


def _realCliReason():
    if importlib.util.find_spec("medsegmamba.cli") is None:
        return "medsegmamba.cli has not landed yet (pipeline engineer)"
    for name in ("medsegmamba.models", "medsegmamba.models.checkpoint"):
        if importlib.util.find_spec(name) is None:
            return f"{name} has not landed yet (models engineer)"
    from medsegmamba import models
    from medsegmamba.models import checkpoint

    if not hasattr(models, "build_model") or not hasattr(checkpoint, "save_checkpoint"):
        return "medsegmamba.models.build_model / checkpoint.save_checkpoint not available yet"
    return None


def test_real_cli_with_tiny_model(slicerScene, tmp_path):
    reason = _realCliReason()
    if reason:
        pytest.skip(reason)
    import torch

    from medsegmamba.models import ModelConfig, build_model
    from medsegmamba.models.checkpoint import save_checkpoint

    torch.manual_seed(0)
    config = ModelConfig(channels=(1, 8, 16, 32, 64, 16), num_blocks=2, d_state=4, num_classes=32)
    model = build_model(config)
    modelPath = str(tmp_path / "tiny.safetensors")
    save_checkpoint(model, config, modelPath, {"name": "tiny-test"})

    volume, _ = makeVolume(slicerScene)
    logic = logicWith(None)
    progress = []
    segmentation = logic.process(volume, model=modelPath, device="cpu", step=32,
                                 onProgress=lambda s, f: progress.append(s), timeout=170)
    assert progress, "the CLI printed no progress events"
    names = segmentsByName(segmentation)
    from medsegmamba.labels import ASEG

    assert set(names) <= {s.name for s in ASEG[1:]}
    table = logic.volumeTable(segmentation)
    assert table.GetNumberOfRows() == len(names)


def test_module_in_application_test_runs_headless(slicerScene):
    """The module's own ScriptedLoadableModuleTest (what 'Reload and Test' runs in Slicer)."""
    from MedSegMamba import MedSegMambaTest

    test = MedSegMambaTest()
    test.setUp()
    test.test_LoadAndMeasure()
    assert slicer.mrmlScene.GetNumberOfNodesByClass("vtkMRMLSegmentationNode") == 1


def test_missing_packages_are_named_as_pip_installs_them(monkeypatch):
    from MedSegMamba import MedSegMambaLogic

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name in ("PIL", "tqdm") else real(name, *a))
    assert MedSegMambaLogic.missingPackages() == ["tqdm", "pillow"]  # the module PIL comes from pip's "pillow"
    monkeypatch.setattr(importlib.util, "find_spec", real)
    assert MedSegMambaLogic.missingPackages() == []
