"""Set-up the Slicer application normally does, for tests of the module's Logic with slicer-core.

See /work/shared/SLICER-TESTING.md: a scene as slicer.mrmlScene, the segmentation converter rules,
stand-ins for slicer.modules.segmentations/colors logic, and the test-only `slicer/` stand-ins
(ScriptedLoadableModule, i18n) on sys.path before slicer is imported.
"""

import os
import sys
import types

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
MODULE_DIR = os.path.join(ROOT, "MedSegMamba")

for path in (os.path.join(HERE, "stubs"), MODULE_DIR):
    if path not in sys.path:
        sys.path.insert(0, path)

SLICER_MISSING = "slicer-core is not installed (pip install 'medsegmamba[slicer-test]'); Slicer tests skipped"


@pytest.fixture
def slicerScene():
    """A fresh MRML scene wired up like the application wires it."""
    slicer = pytest.importorskip("slicer", reason=SLICER_MISSING)
    factory = slicer.vtkSegmentationConverterFactory.GetInstance()
    if not getattr(slicer, "_medsegmambaRulesRegistered", False):
        factory.RegisterConverterRule(slicer.vtkBinaryLabelmapToClosedSurfaceConversionRule())
        factory.RegisterConverterRule(slicer.vtkClosedSurfaceToBinaryLabelmapConversionRule())
        slicer._medsegmambaRulesRegistered = True
    scene = slicer.vtkMRMLScene()
    slicer.mrmlScene = scene
    segmentationsLogic = slicer.vtkSlicerSegmentationsModuleLogic()
    segmentationsLogic.SetMRMLScene(scene)
    colorLogic = slicer.vtkSlicerColorLogic()
    colorLogic.SetMRMLScene(scene)
    volumesLogic = slicer.vtkSlicerVolumesLogic()
    volumesLogic.SetMRMLScene(scene)
    slicer.modules = types.SimpleNamespace(
        segmentations=types.SimpleNamespace(logic=lambda: segmentationsLogic),
        colors=types.SimpleNamespace(logic=lambda: colorLogic),
        volumes=types.SimpleNamespace(logic=lambda: volumesLogic),
    )
    yield scene
    scene.Clear(1)
