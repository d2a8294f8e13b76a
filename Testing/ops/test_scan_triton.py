"""The Triton kernel, forward and backward, through Triton's CPU interpreter vs the reference."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(importlib.util.find_spec("triton") is None, reason="triton is not installed")


@pytest.fixture(scope="module")
def interpreted():
    script = Path(__file__).with_name("triton_interpret_check.py")
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=150)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("case", ["full", "bare_noncontig"])
def test_triton_matches_reference_forward_and_backward(interpreted, case):
    results = interpreted[case]
    for name, (max_err, mean_err, ref_max, same_dtype) in results.items():
        print(f"{case} {name}: max err {max_err:.3e} mean err {mean_err:.3e} (ref absmax {ref_max:.3g})")
    assert set(results) >= {"y", "du", "ddelta", "dA", "dB", "dC"}
    for name, (max_err, _, ref_max, same_dtype) in results.items():
        assert same_dtype, name
        assert max_err <= 2e-6 * max(1.0, ref_max), name
