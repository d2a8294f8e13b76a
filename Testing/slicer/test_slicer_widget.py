"""MedSegMambaWidget.onSegment without Qt: plain objects stand in for the panel's controls (the
panel itself needs the Slicer application), and a recording logic shows what reaches process()."""

import types

import pytest

from slicer_support import SLICER_MISSING

pytest.importorskip("slicer", reason=SLICER_MISSING)


class RecordingLogic:
    isRunning = False

    def __init__(self):
        self.calls = []

    def ensureDependencies(self, interactive=True):
        return True

    def process(self, inputVolume, **kwargs):
        self.calls.append((inputVolume, kwargs))


def control(**attributes):
    return types.SimpleNamespace(**attributes)


def widgetWithPanel(quality, tta, volume):
    from MedSegMamba import MedSegMambaWidget

    widget = MedSegMambaWidget()
    widget.ui = types.SimpleNamespace(
        inputVolumeSelector=control(currentNode=lambda: volume),
        modelComboBox=control(currentData="default"),
        modelPathLineEdit=control(currentPath="", enabled=False),
        deviceComboBox=control(currentData="cpu"),
        qualityComboBox=control(currentData=quality),
        ttaCheckBox=control(checked=tta),
        hippocampusCheckBox=control(checked=False, enabled=False),
        segmentButton=control(enabled=True),
        cancelButton=control(enabled=False, visible=False),
        progressBar=control(value=0, visible=False),
        stageLabel=control(text=""),
        show3DButton=control(enabled=False),
        exportButton=control(enabled=False),
    )
    widget.logic = RecordingLogic()
    widget._timer = control(started=False)
    widget._timer.start = lambda: setattr(widget._timer, "started", True)
    return widget


@pytest.mark.parametrize("tta", [False, True])
@pytest.mark.parametrize("quality, step, tiling", [("fast", 32, "focused"), ("paper", 16, "full")])
def test_segment_button_passes_the_panel_choices(quality, step, tiling, tta):
    volume = object()
    widget = widgetWithPanel(quality, tta, volume)

    widget.onSegment()

    assert len(widget.logic.calls) == 1
    node, kwargs = widget.logic.calls[0]
    assert node is volume
    assert kwargs["tta"] is tta
    assert (kwargs["step"], kwargs["tiling"], kwargs["device"], kwargs["model"]) == (step, tiling, "cpu", "default")
    assert kwargs["wait"] is False and widget._timer.started
