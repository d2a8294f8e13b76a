"""Training on several processes (DistributedDataParallel), on the CPU through gloo: what the
two-GPU machine would run through NCCL, minus the GPUs."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _spread_worker(rank, world, port, values, out):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world), LOCAL_RANK=str(rank))
    from medsegmamba.train.loop import _Ranks

    ranks = _Ranks()  # joins the gloo group from the environment, as under torchrun
    gap = ranks.spread(torch.tensor(values[rank]))
    torch.distributed.destroy_process_group()
    Path(out, f"{rank}.txt").write_text(repr(gap))


@pytest.mark.parametrize("values, want", [([[1.0, 2.0], [1.0, 2.0]], 0.0), ([[1.0, 2.0], [1.0, 2.5]], 0.5)])
def test_spread_between_ranks(tmp_path, values, want):
    mp.spawn(_spread_worker, args=(2, _free_port(), values, str(tmp_path)), nprocs=2, join=True)
    assert [float((tmp_path / f"{r}.txt").read_text()) for r in (0, 1)] == [want, want]


def _label_maps(folder: Path, count: int = 2):
    """Small heads of nested boxes (80^3, 1 mm) with the structures the generator samples around."""
    folder.mkdir(parents=True)
    for i in range(count):
        lab = np.zeros((80,) * 3, np.uint16)
        lab[5:75, 5:75, 5:75] = 24
        lab[10:70, 10:70, 10:70] = 3
        lab[40:70, 10:70, 10:70] = 42
        lab[18 + i:38, 30:50, 30:50] = 2
        lab[42:62 - i, 30:50, 30:50] = 41
        lab[25:37, 35:45, 35:45] = 10
        lab[43:55, 35:45, 35:45] = 49
        lab[30:36, 45:52, 38:44] = 4
        nib.save(nib.Nifti1Image(lab, np.eye(4)), folder / f"map{i}.nii.gz")


@pytest.mark.parametrize("extra", [[], ["--self-distill", "1"]], ids=["plain", "self-distill"])
def test_torchrun_two_processes_keep_one_model(tmp_path, extra):
    _label_maps(tmp_path / "maps")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "MedSegMamba"), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                           "--master_port", str(_free_port()), "-m", "medsegmamba.train.command", "--smoke",
                           "--device", "cpu", "--data", str(tmp_path / "maps"), "--out", str(tmp_path / "run"),
                           "--max-iters", "4", *extra],
                          capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["ranks"] == 2 and summary["iterations"] == 4
    assert summary["replica_spread"] == 0.0  # the two replicas hold the same weights
    train = [json.loads(x) for x in open(tmp_path / "run" / "log.jsonl") if '"train"' in x]
    assert [r["it"] for r in train] == [1, 2, 3, 4]  # one log, written by rank 0 only
    assert all((r["self_distill"] > 0) == bool(extra) for r in train)
    assert (tmp_path / "run" / "last.safetensors").is_file()
