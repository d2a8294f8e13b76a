"""Fixtures of the scan and kernel tests."""

import json
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def run_check():
    """Run a check script of this folder (triton_*_check.py: Triton's CPU interpreter, which must be
    set up before Triton is imported, hence a process of its own) and return the JSON object its
    last line of output holds; a failing script fails the test with its stderr."""
    def run(name: str) -> dict:
        script = Path(__file__).with_name(name)
        proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-3000:]
        return json.loads(proc.stdout.strip().splitlines()[-1])
    return run
