"""scripts/bwd_verdict.py: which Triton backward a device call trains with, from scan_gpu's results."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "bwd_verdict.py"
SEQ, CHUNKED = "triton-chunked", "triton-chunked/bwd-chunked"


def results(chunked_errors, seq_ms=15.7, chunked_ms=11.2):
    acc = [{"case": "Bt=1 float32", "impl": SEQ, "y": 1e-7, "du": 1.2e-7, "dA": 1.85e-6},
           {"case": "Bt=1 float32", "impl": CHUNKED, "y": 1e-7, **chunked_errors}]
    times = [{"case": "Bt=1 float32", "impl": SEQ, "fwd_bwd_ms": seq_ms},
             {"case": "Bt=1 float32", "impl": CHUNKED, "fwd_bwd_ms": chunked_ms}]
    return {"accuracy": acc, "timings": times}


def verdict(tmp_path, res):
    path = tmp_path / "results.json"
    if res is not None:
        path.write_text(json.dumps(res))
    proc = subprocess.run([sys.executable, str(SCRIPT), str(path)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip(), proc.stderr


@pytest.mark.parametrize("errors, seq_ms, want, why", [
    ({"du": 1.2e-7, "dA": 1.79e-6}, 15.7, "chunked", "faster"),
    ({"du": 1.2e-7, "dA": 1.79e-6}, 10.0, "seq", "not faster"),
    ({"du": 5e-6, "dA": 1.79e-6}, 15.7, "seq", "du"),            # more than twice the sequential error
    ({"du": float("nan"), "dA": 1.79e-6}, 15.7, "seq", "du"),
])
def test_verdict(tmp_path, errors, seq_ms, want, why):
    out, err = verdict(tmp_path, results(errors, seq_ms=seq_ms))
    assert out == want and why in err


def test_missing_file_keeps_the_sequential_backward(tmp_path):
    out, err = verdict(tmp_path, None)
    assert out == "seq" and "cannot read" in err
