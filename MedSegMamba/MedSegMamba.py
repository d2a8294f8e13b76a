"""MedSegMamba: subcortical segmentation of T1 brain MRI in 3D Slicer (Module, Widget, Logic, Test).

The model runs in a separate process (`python -m medsegmamba.cli segment --progress json`) fed
by temporary files; its output is read on a thread and polled (a QTimer in the GUI, a wait loop
headless), so the application never blocks and Cancel ends the whole process tree.
"""

import logging
import os
import shutil
import sys
import tempfile
import time

import slicer
from slicer import vtkMRMLScalarVolumeNode, vtkMRMLSegmentationNode
from slicer.i18n import tr as _
from slicer.i18n import translate
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleLogic,
    ScriptedLoadableModuleTest,
    ScriptedLoadableModuleWidget,
)

from MedSegMambaLib import scene as sceneHelpers
from MedSegMambaLib.runner import SegmenterProcess

try:
    from slicer.parameterNodeWrapper import parameterNodeWrapper
except ImportError:  # slicer-core outside the application has no parameter node wrapper
    parameterNodeWrapper = None

MODULE_DIR = os.path.dirname(os.path.abspath(__file__))
DEVICES = {"auto": "auto", "gpu": "cuda", "cuda": "cuda", "cpu": "cpu"}
STEPS = (16, 32)
TILINGS = ("focused", "full")
# The panel's "Quality" choices: (patch step, tiling). "focused" tiles only the box where a coarse
# pass finds the structures; "full" tiles the whole head as the paper does (several times slower).
QUALITIES = {"fast": (32, "focused"), "best": (16, "focused"), "paper": (16, "full")}
# What the engine imports -> what pip installs (they differ for Pillow)
PACKAGES = {"torch": "torch", "numpy": "numpy", "nibabel": "nibabel", "scipy": "scipy",
            "safetensors": "safetensors", "tqdm": "tqdm", "PIL": "pillow"}


#
# MedSegMamba
#


class MedSegMamba(ScriptedLoadableModule):
    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = _("MedSegMamba")
        self.parent.categories = [translate("qSlicerAbstractCoreModule", "Segmentation")]
        self.parent.dependencies = []
        self.parent.contributors = ["MedSegMamba contributors"]
        self.parent.helpText = _(
            "Segments a T1-weighted brain MRI into the FreeSurfer subcortical structures (and, with "
            "subfield weights, the hippocampal subfields) with the 3D CNN-Mamba network MedSegMamba. "
            "The model runs in a background process; the result is a segmentation with FreeSurfer "
            "names and colours that can be edited, and whose volumes can be exported."
        )
        self.parent.acknowledgementText = _(
            "MedSegMamba network: Cao et al., a 3D CNN-Mamba hybrid for subcortical brain segmentation. "
            "Colours: FreeSurfer's standard colour table."
        )
        self._setIcon()

    def _setIcon(self):
        # In a source checkout Resources/ is beside MedSegMamba/, not where Slicer looks by default.
        if not hasattr(slicer, "app"):
            return
        import qt

        try:
            self.parent.icon = qt.QIcon(sceneHelpers.resourcePath("Icons", "MedSegMamba.png"))
        except FileNotFoundError:
            pass


#
# Parameter node (GUI state)
#

if parameterNodeWrapper is not None:

    @parameterNodeWrapper
    class MedSegMambaParameterNode:
        inputVolume: vtkMRMLScalarVolumeNode
        hippocampus: bool = False
        tta: bool = True
        segmentation: vtkMRMLSegmentationNode


#
# MedSegMambaWidget
#


class MedSegMambaWidget(ScriptedLoadableModuleWidget):
    def __init__(self, parent=None):
        ScriptedLoadableModuleWidget.__init__(self, parent)
        self.logic = None
        self._parameterNode = None
        self._parameterNodeGuiTag = None
        self._timer = None

    def setup(self):
        import qt

        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(sceneHelpers.resourcePath("UI", "MedSegMamba.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.logic = MedSegMambaLogic()

        self._fillChoices()
        self._timer = qt.QTimer()
        self._timer.setInterval(100)
        self._timer.timeout.connect(self._poll)

        self.ui.segmentButton.clicked.connect(self.onSegment)
        self.ui.cancelButton.clicked.connect(self.onCancel)
        self.ui.show3DButton.clicked.connect(self.onShow3D)
        self.ui.exportButton.clicked.connect(self.onExport)
        self.ui.modelComboBox.currentIndexChanged.connect(self._updateButtons)
        self.ui.inputVolumeSelector.currentNodeChanged.connect(self._updateButtons)
        self._setRunning(False)
        self.initializeParameterNode()

    def _fillChoices(self):
        self.ui.modelComboBox.clear()
        self.ui.modelComboBox.addItem(_("Default (shipped weights)"), "default")
        self.ui.modelComboBox.addItem(_("Paper network (MedSegMamba)"), "paper")
        self.ui.modelComboBox.addItem(_("From file..."), "file")
        self.ui.deviceComboBox.clear()
        for text, value in ((_("Auto"), "auto"), (_("GPU (CUDA)"), "cuda"), (_("CPU"), "cpu")):
            self.ui.deviceComboBox.addItem(text, value)
        self.ui.qualityComboBox.clear()
        self.ui.qualityComboBox.addItem(_("Fast (step 32)"), "fast")
        self.ui.qualityComboBox.addItem(_("Best (step 16)"), "best")
        self.ui.qualityComboBox.addItem(_("As in the paper (step 16, whole head; slow)"), "paper")
        subfields = self.logic.subfieldWeightsAvailable()
        self.ui.hippocampusCheckBox.enabled = subfields
        self.ui.hippocampusCheckBox.toolTip = (
            _("Also segment the 24 hippocampal subfields.") if subfields else _("No hippocampal subfield weights are installed.")
        )

    def cleanup(self):
        self.removeObservers()
        if self.logic is not None and self.logic.isRunning:
            self.logic.cancel()

    def enter(self):
        self.initializeParameterNode()

    def exit(self):
        if self._parameterNode is not None and self._parameterNodeGuiTag is not None:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self._parameterNodeGuiTag = None

    def initializeParameterNode(self):
        if parameterNodeWrapper is None or self.logic is None:
            return
        self.exit()  # never connect the GUI twice
        self._parameterNode = MedSegMambaParameterNode(self.logic.getParameterNode())
        if not self._parameterNode.inputVolume:
            self._parameterNode.inputVolume = slicer.mrmlScene.GetFirstNodeByClass("vtkMRMLScalarVolumeNode")
        self._parameterNodeGuiTag = self._parameterNode.connectGui(self.ui)
        self._updateButtons()

    def _updateButtons(self, *_args):
        running = self.logic is not None and self.logic.isRunning
        self.ui.modelPathLineEdit.enabled = self.ui.modelComboBox.currentData == "file"
        self.ui.segmentButton.enabled = not running and self.ui.inputVolumeSelector.currentNode() is not None
        hasResult = self._resultNode() is not None
        self.ui.show3DButton.enabled = hasResult
        self.ui.exportButton.enabled = hasResult

    def _resultNode(self):
        if self._parameterNode is not None:
            return self._parameterNode.segmentation
        return getattr(self, "_lastSegmentation", None)

    def _setRunning(self, running):
        self.ui.progressBar.visible = running
        self.ui.cancelButton.visible = running
        self.ui.cancelButton.enabled = running
        if running:
            self.ui.progressBar.value = 0
        self._updateButtons()

    def onSegment(self):
        if not self.logic.ensureDependencies(interactive=True):
            return
        model = self.ui.modelComboBox.currentData
        if model == "file":
            model = self.ui.modelPathLineEdit.currentPath
            if not model or not os.path.isfile(model):
                slicer.util.errorDisplay(_("Choose a model file (.safetensors) first."))
                return
        step, tiling = QUALITIES[self.ui.qualityComboBox.currentData]
        try:
            self.logic.process(
                self.ui.inputVolumeSelector.currentNode(),
                model=model,
                device=self.ui.deviceComboBox.currentData,
                step=step,
                tiling=tiling,
                hippocampus=self.ui.hippocampusCheckBox.checked and self.ui.hippocampusCheckBox.enabled,
                tta=self.ui.ttaCheckBox.checked,
                wait=False,
                onProgress=self._onProgress,
                onFinished=self._onFinished,
                poll=False,
            )
        except Exception as error:  # bad arguments, or the volume could not be written
            slicer.util.errorDisplay(_("Segmentation could not start: {error}").format(error=error))
            return
        self.ui.stageLabel.text = _("Starting...")
        self._setRunning(True)
        self._timer.start()

    def _poll(self):
        if not self.logic.poll():
            self._timer.stop()

    def _onProgress(self, stage, fraction):
        self.ui.stageLabel.text = _("{stage}: {percent}%").format(stage=stage, percent=int(100 * fraction))
        self.ui.progressBar.value = int(100 * fraction)

    def _onFinished(self, segmentation, error):
        self._timer.stop()
        self._setRunning(False)
        if segmentation is not None:
            self._lastSegmentation = segmentation
            if self._parameterNode is not None:
                self._parameterNode.segmentation = segmentation
            self.ui.stageLabel.text = _("Done: {count} structures.").format(
                count=segmentation.GetSegmentation().GetNumberOfSegments()
            )
        elif error == MedSegMambaLogic.CANCELLED:
            self.ui.stageLabel.text = _("Cancelled.")
        else:
            self.ui.stageLabel.text = _("Failed.")
            slicer.util.errorDisplay(
                _("MedSegMamba failed: {error}").format(error=error), detailedText=self.logic.lastLog
            )
        self._updateButtons()

    def onCancel(self):
        self.logic.cancel()

    def onShow3D(self):
        segmentation = self._resultNode()
        if segmentation is not None:
            segmentation.CreateClosedSurfaceRepresentation()
            segmentation.GetDisplayNode().SetVisibility3D(True)
            slicer.app.layoutManager().threeDWidget(0).threeDView().resetFocalPoint()

    def onExport(self):
        import qt

        segmentation = self._resultNode()
        if segmentation is None:
            return
        path = qt.QFileDialog.getSaveFileName(
            slicer.util.mainWindow(), _("Export statistics"), f"{segmentation.GetName()}_volumes.csv", "CSV (*.csv)"
        )
        if not path:
            return
        table = self.logic.volumeTable(segmentation)
        sceneHelpers.writeTable(table, path)
        slicer.util.showStatusMessage(_("Wrote {path}").format(path=path), 3000)


#
# MedSegMambaLogic
#


class _Job:
    """What one running segmentation needs until it is loaded or dropped."""

    def __init__(self, process, workDir, inputVolume, hippocampus, onProgress, onFinished):
        self.process = process
        self.workDir = workDir
        self.inputVolume = inputVolume
        self.hippocampus = hippocampus
        self.onProgress = onProgress
        self.onFinished = onFinished
        self.outputs = None
        self.error = None
        self.result = None
        self.finished = False


class MedSegMambaLogic(ScriptedLoadableModuleLogic):
    """process() segments a volume; volumeTable() measures a segmentation as it is now.

    Works without the GUI: with wait=True process() returns the segmentation node; with
    wait=False it returns at once and calls onProgress(stage, fraction) and
    onFinished(segmentationNode or None, error message or None) from poll() - a QTimer in the
    application, or the caller's own loop (waitForCompletion()).
    """

    CANCELLED = "cancelled"

    def __init__(self):
        ScriptedLoadableModuleLogic.__init__(self)
        # argv prefix of the segmenter; tests point it at a stand-in script.
        self.segmenterCommand = None
        self.lastLog = ""
        self._job = None
        self._timer = None

    # -- running -------------------------------------------------------------------------------

    @property
    def isRunning(self):
        return self._job is not None and not self._job.finished

    def defaultCommand(self):
        python = shutil.which("PythonSlicer") if hasattr(slicer, "app") else None
        return [python or sys.executable, "-m", "medsegmamba.cli"]

    def buildCommand(self, inputPath, outputDir, model, device, step, hippocampus, tiling="focused", tta=True):
        command = list(self.segmenterCommand or self.defaultCommand())
        command += ["segment", inputPath, "-o", outputDir, "--model", model, "--device", device]
        command += ["--step", str(step), "--tiling", tiling, "--progress", "json", "--overwrite"]
        if hippocampus:
            command += ["--hippocampus", "default"]
        command.append("--tta" if tta else "--no-tta")  # said either way: the CLI's default may change
        return command

    def _environment(self):
        env = dict(slicer.util.startupEnvironment() if hasattr(slicer, "app") else os.environ)
        env["PYTHONUNBUFFERED"] = "1"  # progress lines must arrive as they are printed
        env["PYTHONPATH"] = os.pathsep.join(p for p in (MODULE_DIR, env.get("PYTHONPATH")) if p)
        return env

    @staticmethod
    def checkArguments(inputVolume, model, device, step, tiling="focused", tta=True):
        if inputVolume is None or not inputVolume.IsA("vtkMRMLScalarVolumeNode") or inputVolume.GetImageData() is None:
            raise ValueError(f"inputVolume: expected a scalar volume node with image data, got {inputVolume!r}")
        if str(device).lower() not in DEVICES:
            raise ValueError(f"device: expected one of {sorted(DEVICES)}, got {device!r}")
        if step not in STEPS:
            raise ValueError(f"step: expected 16 (best) or 32 (fast), got {step!r}")
        if tiling not in TILINGS:
            raise ValueError(f"tiling: expected one of {TILINGS}, got {tiling!r}")
        if not isinstance(tta, bool):
            raise ValueError(f"tta: expected True or False, got {tta!r}")
        if not isinstance(model, str) or not model:
            raise ValueError(f"model: expected 'default', a model name or a file path, got {model!r}")

    def process(
        self,
        inputVolume,
        model="default",
        device="auto",
        step=32,
        hippocampus=False,
        wait=True,
        tiling="focused",
        tta=True,
        onProgress=None,
        onFinished=None,
        timeout=None,
        poll=True,
    ):
        """Segment inputVolume. wait=True: returns the vtkMRMLSegmentationNode or raises
        RuntimeError. wait=False: returns None at once; results come through the callbacks
        (poll=True starts a QTimer when running inside the application)."""
        self.checkArguments(inputVolume, model, device, step, tiling, tta)
        if self.isRunning:
            raise RuntimeError("a segmentation is already running; cancel it first")
        if os.path.isfile(model):
            model = os.path.abspath(model)
        workDir = tempfile.mkdtemp(prefix="MedSegMamba-")
        try:
            inputPath = os.path.join(workDir, "input.nii.gz")
            sceneHelpers.writeVolume(inputVolume, inputPath)
            outputDir = os.path.join(workDir, "out")
            command = self.buildCommand(inputPath, outputDir, model, DEVICES[device.lower()], step, hippocampus,
                                        tiling, tta)
            logging.info("MedSegMamba: %s", " ".join(command))
            process = SegmenterProcess(command, env=self._environment(), cwd=workDir)
        except Exception:
            shutil.rmtree(workDir, ignore_errors=True)
            raise
        self.lastLog = ""
        self._job = _Job(process, workDir, inputVolume, hippocampus, onProgress, onFinished)
        if wait:
            return self.waitForCompletion(timeout)
        if poll and hasattr(slicer, "app"):
            self._startTimer()
        return None

    def _startTimer(self):
        import qt  # only inside the application

        if self._timer is None:
            self._timer = qt.QTimer()
            self._timer.setInterval(100)
            self._timer.timeout.connect(self.poll)
        self._timer.start()

    def waitForCompletion(self, timeout=None):
        """Poll until the running job ends; return its segmentation or raise RuntimeError."""
        job = self._job
        if job is None:
            raise RuntimeError("nothing is running")
        start = time.monotonic()
        while self.poll():
            if timeout is not None and time.monotonic() - start > timeout:
                self.cancel()
                raise RuntimeError(f"MedSegMamba did not finish within {timeout} s (cancelled)")
            time.sleep(0.05)
        if job.result is None:
            raise RuntimeError(f"MedSegMamba failed: {job.error}\n--- log ---\n{self.lastLog}")
        return job.result

    def poll(self):
        """Hand the child's events to the callbacks; False once the job has ended."""
        job = self._job
        if job is None or job.finished:
            return False
        for event in job.process.events():
            if event.kind == "progress" and job.onProgress is not None:
                job.onProgress(event.stage, event.fraction)
            elif event.kind == "done":
                job.outputs = event.outputs
            elif event.kind == "error":
                job.error = event.message
            elif event.kind == "exit":
                self._finish(job, event.returncode)
                return False
        return True

    def _finish(self, job, returncode):
        self.lastLog = "\n".join(job.process.log)
        if returncode == 0 and job.outputs and job.error is None:
            try:
                job.result = self.loadResults(job.outputs, job.inputVolume, os.path.join(job.workDir, "out"))
            except Exception as error:
                job.error = f"could not load the result: {error}"
        elif job.error is None:
            tail = "\n".join(job.process.log[-5:])
            job.error = f"the segmenter exited with status {returncode}" + (f":\n{tail}" if tail else "")
        self._end(job, job.result, job.error)

    def _end(self, job, result, error):
        job.finished = True
        if self._timer is not None:
            self._timer.stop()
        shutil.rmtree(job.workDir, ignore_errors=True)
        if job.onFinished is not None:
            job.onFinished(result, error)

    def cancel(self):
        """End the whole process tree; no node is added to the scene."""
        job = self._job
        if job is None or job.finished:
            return
        job.process.kill()
        job.process.events()
        self.lastLog = "\n".join(job.process.log)
        job.error = self.CANCELLED
        self._end(job, None, self.CANCELLED)

    # -- results -------------------------------------------------------------------------------

    def loadResults(self, outputs, inputVolume, outputDir="."):
        """Label files named by the segmenter's "done" event -> one segmentation node."""
        keys = ["labels"] + sorted(k for k in outputs if "subfield" in k or "hippocamp" in k)
        paths = []
        for key in keys:
            if outputs.get(key):
                path = outputs[key]
                paths.append(path if os.path.isabs(path) else os.path.join(outputDir, path))
        if not paths:
            raise RuntimeError(f"the segmenter named no label file (outputs: {sorted(outputs)})")
        name = slicer.mrmlScene.GenerateUniqueName(f"{inputVolume.GetName()} MedSegMamba")
        return sceneHelpers.segmentationFromLabelmaps(paths, inputVolume, name)

    def volumeTable(self, segmentation, table=None):
        """vtkMRMLTableNode: segment, label, voxels, volume mm3, volume cm3 - as the segmentation is now."""
        return sceneHelpers.volumeTable(segmentation, table)

    def exportStatistics(self, segmentation, path):
        sceneHelpers.writeTable(self.volumeTable(segmentation), path)
        return path

    # -- set-up --------------------------------------------------------------------------------

    @staticmethod
    def missingPackages():
        """pip names of the packages whose modules cannot be imported."""
        import importlib.util

        return [pip_name for module, pip_name in PACKAGES.items() if importlib.util.find_spec(module) is None]

    @staticmethod
    def subfieldWeightsAvailable():
        try:
            from medsegmamba import weights

            return any("subfield" in str(name).lower() or "hippocamp" in str(name).lower() for name in weights.available())
        except Exception:  # package or its registry not installed yet: leave the option off
            return False

    def ensureDependencies(self, interactive=True):
        """First use: install what is missing, after asking (GUI only; tests never call this)."""
        missing = self.missingPackages()
        if not missing:
            return True
        if interactive and not slicer.util.confirmOkCancelDisplay(
            _("MedSegMamba needs these Python packages: {names}. Install them now? This can take several minutes.").format(
                names=", ".join(missing)
            )
        ):
            return False
        if "torch" in missing:
            missing.remove("torch")
            try:
                import PyTorchUtils  # the PyTorch extension picks the right CUDA build

                if PyTorchUtils.PyTorchUtilsLogic().installTorch(askConfirmation=False) is None:
                    raise RuntimeError("PyTorch was not installed")
            except ImportError:
                slicer.util.pip_install("torch")
        if missing:
            slicer.util.pip_install(missing)
        if importlib_spec("medsegmamba") is None:
            slicer.util.pip_install("medsegmamba")
        return not self.missingPackages()

    def getParameterNode(self):
        if parameterNodeWrapper is None:
            return None
        return ScriptedLoadableModuleLogic.getParameterNode(self)


def importlib_spec(name):
    import importlib.util

    return importlib.util.find_spec(name)


#
# MedSegMambaTest
#


class MedSegMambaTest(ScriptedLoadableModuleTest):
    """Runs inside Slicer (Reload and Test): loading, naming, colours and the volume table."""

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        self.setUp()
        self.test_LoadAndMeasure()

    def test_LoadAndMeasure(self):
        import numpy as np

        self.delayDisplay("Synthetic volume and label file")
        image = np.zeros((20, 24, 28), np.float32)
        image[5:15, 6:18, 7:21] = 100
        volume = slicer.util.addVolumeFromArray(image, name="T1")
        volume.SetSpacing(1.0, 1.2, 0.9)
        labels = np.zeros(image.shape, np.int16)
        labels[5:10, 6:12, 7:14] = 17  # Left-Hippocampus
        labels[10:15, 12:18, 14:21] = 53  # Right-Hippocampus
        labelNode = slicer.util.addVolumeFromArray(labels, nodeClassName="vtkMRMLLabelMapVolumeNode")
        labelNode.CopyOrientation(volume)
        workDir = tempfile.mkdtemp(prefix="MedSegMambaTest-")
        try:
            path = os.path.join(workDir, "labels.nii.gz")
            sceneHelpers.writeVolume(labelNode, path)
            slicer.mrmlScene.RemoveNode(labelNode)
            logic = MedSegMambaLogic()
            segmentation = logic.loadResults({"labels": path}, volume)
        finally:
            shutil.rmtree(workDir, ignore_errors=True)
        names = sorted(segmentation.GetSegmentation().GetSegment(s).GetName() for s in segmentation.GetSegmentation().GetSegmentIDs())
        self.assertEqual(names, ["Left-Hippocampus", "Right-Hippocampus"])
        table = logic.volumeTable(segmentation)
        voxel = 1.0 * 1.2 * 0.9
        volumes = {table.GetCellText(r, 0): float(table.GetCellText(r, 3)) for r in range(table.GetNumberOfRows())}
        self.assertAlmostEqual(volumes["Left-Hippocampus"], 5 * 6 * 7 * voxel, places=3)
        self.assertAlmostEqual(volumes["Right-Hippocampus"], 5 * 6 * 7 * voxel, places=3)
        self.delayDisplay("Test passed")
