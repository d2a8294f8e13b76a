"""The errors MedSegMamba raises on purpose: each names the file (when there is one) and the problem.

The CLI prints them as one line, `medsegmamba: error: <file>: <problem>`, without a traceback.
"""

from __future__ import annotations

import os


class MedSegMambaError(Exception):
    """Base class: `str(error)` reads `<file>: <problem>`, or just `<problem>` without a file."""

    def __init__(self, problem: str, path: str | os.PathLike | None = None):
        self.problem = problem
        self.path = None if path is None else os.fspath(path)
        super().__init__(f"{self.path}: {problem}" if self.path else problem)


class InputError(MedSegMambaError):
    """An input image cannot be used: missing, unreadable, truncated, wrong shape or values."""


class OutputError(MedSegMambaError):
    """An output cannot be written: folder not writable, file already there without overwrite."""


class ModelError(MedSegMambaError):
    """A model or its weights cannot be loaded or run."""


class ConfigError(MedSegMambaError):
    """A training configuration or option cannot be used: unknown key, bad value."""
