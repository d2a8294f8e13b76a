"""Fixtures shared by every test folder."""

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def load_script():
    """Import a repo script that is not part of the package (benchmarks/, scripts/) by its path
    from the repo root, e.g. load_script("benchmarks/profile_gpu.py")."""
    def load(relative: str):
        path = ROOT / relative
        spec = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    return load
