"""Scene helpers of the MedSegMamba module: files in and out of MRML nodes, and the volume table.

Imports slicer (MRML, the segmentation core) but never qt, so it works in the application and in
a plain Python with slicer-core.
"""

from __future__ import annotations

import os

import numpy as np
import slicer
import vtk
from vtk.util import numpy_support

LABEL_TAG = "MedSegMamba.FreeSurferLabel"  # segment tag holding the FreeSurfer label value
COLOR_NODE_NAME = "MedSegMamba FreeSurfer"
TABLE_COLUMNS = ("Segment", "Label", "Voxels", "Volume mm3", "Volume cm3")


def resourcePath(*parts: str) -> str:
    """A file under Resources/, both in the source tree (Resources/ beside MedSegMamba/) and in
    a built extension (MedSegMamba/Resources/ beside the module file)."""
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for base in (os.path.join(here, "Resources"), os.path.join(os.path.dirname(here), "Resources")):
        path = os.path.join(base, *parts)
        if os.path.exists(path):
            return path
    raise FileNotFoundError(f"MedSegMamba resource not found: {os.path.join('Resources', *parts)}")


def colorTableNode(scene=None):
    """The FreeSurfer colour table shipped in Resources, loaded once per scene."""
    scene = scene or slicer.mrmlScene
    existing = scene.GetFirstNodeByName(COLOR_NODE_NAME)
    if existing is not None and existing.IsA("vtkMRMLColorTableNode"):
        return existing
    path = resourcePath("ColorTables", "MedSegMambaFreeSurfer.csv")
    node = slicer.modules.colors.logic().LoadColorFile(path, COLOR_NODE_NAME)
    if node is None:
        raise RuntimeError(f"could not read the colour table {path}")
    return node


def writeVolume(volumeNode, path: str) -> None:
    """Write a scalar volume (its own grid, without parent transforms) to a NIfTI/NRRD file."""
    storage = slicer.vtkMRMLVolumeArchetypeStorageNode()
    storage.SetFileName(path)
    storage.SetUseCompression(True)
    if not storage.WriteData(volumeNode):
        raise RuntimeError(f"could not write {volumeNode.GetName()} to {path}")


def _ijkToRas(volumeNode) -> np.ndarray:
    matrix = vtk.vtkMatrix4x4()
    volumeNode.GetIJKToRASMatrix(matrix)
    return np.array([[matrix.GetElement(r, c) for c in range(4)] for r in range(4)])


def readLabelmap(path: str, referenceVolume, scene=None):
    """Read a label file into a new label map node; snap it onto the reference grid when it is the
    same grid up to file rounding (NIfTI stores float32), so no resampling happens on import."""
    scene = scene or slicer.mrmlScene
    node = scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode", "MedSegMamba-labels")
    storage = slicer.vtkMRMLVolumeArchetypeStorageNode()
    storage.SetFileName(path)
    if not storage.ReadData(node):
        scene.RemoveNode(node)
        raise RuntimeError(f"could not read the label map {path}")
    onGrid = _toReferenceGrid(slicer.util.arrayFromVolume(node), _ijkToRas(node), referenceVolume)
    if onGrid is not None:
        slicer.util.updateVolumeFromArray(node, onGrid)
        node.CopyOrientation(referenceVolume)
    return node


def _toReferenceGrid(array, ijkToRas, referenceVolume):
    """The label array re-indexed onto the reference grid when both grids hold the same voxel
    centres (file readers may flip or swap axes, e.g. NIfTI of a left-handed grid); else None."""
    dims = np.array(referenceVolume.GetImageData().GetDimensions())  # I, J, K
    # label IJK -> reference IJK
    mapping = np.linalg.inv(_ijkToRas(referenceVolume)) @ ijkToRas
    rotation, offset = mapping[:3, :3], mapping[:3, 3]
    signed = np.round(rotation)
    if not np.allclose(rotation, signed, atol=1e-3) or not np.allclose(np.abs(signed).sum(0), 1):
        return None
    if not np.allclose(np.abs(signed).sum(1), 1):
        return None
    perm = [int(np.argmax(np.abs(signed[r]))) for r in range(3)]  # reference axis r <- label axis perm[r]
    signs = [signed[r, perm[r]] for r in range(3)]
    ijk = array.transpose(2, 1, 0)  # numpy (K, J, I) -> (I, J, K)
    if [ijk.shape[perm[r]] for r in range(3)] != list(dims):
        return None
    for r in range(3):
        if not np.isclose(offset[r], 0 if signs[r] > 0 else dims[r] - 1, atol=1e-3):
            return None
    out = ijk.transpose(perm)
    out = out[tuple(slice(None, None, -1) if signs[r] < 0 else slice(None) for r in range(3))]
    return np.ascontiguousarray(out.transpose(2, 1, 0))


def segmentationFromLabelmaps(labelPaths, referenceVolume, name: str, scene=None):
    """One segmentation node holding one segment per label present in the files, named and
    coloured from the FreeSurfer table, on the reference volume's geometry, with a closed surface."""
    scene = scene or slicer.mrmlScene
    colors = colorTableNode(scene)
    segmentation = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", name)
    try:
        segmentation.CreateDefaultDisplayNodes()
        segmentation.SetReferenceImageGeometryParameterFromVolumeNode(referenceVolume)
        for path in labelPaths:
            _importLabelmap(path, referenceVolume, colors, segmentation, scene)
        segmentation.SetAndObserveTransformNodeID(referenceVolume.GetTransformNodeID())
        if not segmentation.CreateClosedSurfaceRepresentation():
            raise RuntimeError("could not make the closed-surface representation (converter rules missing?)")
        segmentation.GetDisplayNode().SetPreferredDisplayRepresentationName3D("Closed surface")
    except Exception:
        scene.RemoveNode(segmentation)
        raise
    return segmentation


def _importLabelmap(path, referenceVolume, colors, segmentation, scene) -> None:
    labelmap = readLabelmap(path, referenceVolume, scene)
    try:
        labelmap.CreateDefaultDisplayNodes()
        labelmap.GetDisplayNode().SetAndObserveColorNodeID(colors.GetID())
        present = {int(v) for v in np.unique(slicer.util.arrayFromVolume(labelmap)) if v != 0}
        before = set(_segmentIds(segmentation))
        logic = slicer.vtkSlicerSegmentationsModuleLogic
        if not logic.ImportLabelmapToSegmentationNode(labelmap, segmentation):
            raise RuntimeError(f"could not import the label map {path}")
        for segmentId in _segmentIds(segmentation):
            if segmentId not in before:
                segment = segmentation.GetSegmentation().GetSegment(segmentId)
                segment.SetTag(LABEL_TAG, str(segment.GetLabelValue()))
        missing = present - {int(v) for v in segmentLabels(segmentation).values()}
        if missing:
            raise RuntimeError(f"labels {sorted(missing)} of {path} did not become segments")
    finally:
        scene.RemoveNode(labelmap)


def _segmentIds(segmentation) -> list[str]:
    seg = segmentation.GetSegmentation()
    return [seg.GetNthSegmentID(i) for i in range(seg.GetNumberOfSegments())]


def segmentLabels(segmentation) -> dict[str, int]:
    """segment ID -> FreeSurfer label (0 for segments the user added by hand)."""
    out = {}
    for segmentId in _segmentIds(segmentation):
        value = vtk.reference("")
        segment = segmentation.GetSegmentation().GetSegment(segmentId)
        found = segment.GetTag(LABEL_TAG, value)
        out[segmentId] = int(str(value)) if found and str(value).isdigit() else 0
    return out


def segmentVoxels(segmentation, segmentId: str) -> tuple[int, float]:
    """(voxel count, voxel volume in mm3) of one segment as the segmentation holds it now.

    Segments share labelmap layers; a segment's voxels are those of its layer that hold its
    label value."""
    segment = segmentation.GetSegmentation().GetSegment(segmentId)
    image = segment.GetRepresentation(slicer.vtkSegmentationConverter.GetBinaryLabelmapRepresentationName())
    if image is None or image.GetPointData().GetScalars() is None:
        return 0, 0.0
    matrix = vtk.vtkMatrix4x4()
    image.GetImageToWorldMatrix(matrix)
    voxel = abs(np.linalg.det(np.array([[matrix.GetElement(r, c) for c in range(3)] for r in range(3)])))
    values = numpy_support.vtk_to_numpy(image.GetPointData().GetScalars())
    return int(np.count_nonzero(values == segment.GetLabelValue())), float(voxel)


def volumeTable(segmentation, table=None, scene=None):
    """Fill (or create) a table node: segment, label, voxels, volume mm3, volume cm3."""
    scene = scene or slicer.mrmlScene
    if table is None:
        table = scene.AddNewNodeByClass("vtkMRMLTableNode", f"{segmentation.GetName()} volumes")
    table.RemoveAllColumns()
    names = vtk.vtkStringArray()
    columns = [names] + [vtk.vtkIntArray(), vtk.vtkIntArray(), vtk.vtkDoubleArray(), vtk.vtkDoubleArray()]
    for column, title in zip(columns, TABLE_COLUMNS):
        column.SetName(title)
    labels = segmentLabels(segmentation)
    for segmentId, label in labels.items():
        voxels, voxelVolume = segmentVoxels(segmentation, segmentId)
        names.InsertNextValue(segmentation.GetSegmentation().GetSegment(segmentId).GetName())
        columns[1].InsertNextValue(label)
        columns[2].InsertNextValue(voxels)
        columns[3].InsertNextValue(voxels * voxelVolume)
        columns[4].InsertNextValue(voxels * voxelVolume / 1000.0)
    for column in columns:
        table.AddColumn(column)
    table.SetUseColumnTitleAsColumnHeader(True)
    table.Modified()
    return table


def writeTable(table, path: str) -> None:
    """Write a table node as CSV (or TSV, by the file's extension)."""
    storage = slicer.vtkMRMLTableStorageNode()
    storage.SetFileName(path)
    if not storage.WriteData(table):
        raise RuntimeError(f"could not write the table to {path}")
