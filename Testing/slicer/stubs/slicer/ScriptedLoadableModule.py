"""Test-only stand-in for the application's scripted-module base classes (slicer-core lacks them).

This folder has no __init__.py on purpose: put its parent on sys.path before `import slicer` and
slicer-core's namespace picks this module up as `slicer.ScriptedLoadableModule`.
"""

import unittest


class ScriptedLoadableModule:
    def __init__(self, parent=None):
        self.parent = parent


class ScriptedLoadableModuleWidget:
    def __init__(self, parent=None):
        self.parent = parent

    def setup(self):
        raise NotImplementedError("the Qt panel needs the Slicer application")


class ScriptedLoadableModuleLogic:
    def __init__(self, parent=None):
        self.parent = parent

    def getParameterNode(self):
        return None


class ScriptedLoadableModuleTest(unittest.TestCase):
    def delayDisplay(self, message, msec=0):
        pass
