"""Shared fixtures for the model tests: the golden vectors of the authors' code."""

from pathlib import Path

import pytest
import torch

GOLDEN = Path(__file__).resolve().parents[2].parent / "shared" / "golden"


def golden(name: str) -> dict:
    if not (GOLDEN / name).is_file():
        pytest.skip(f"golden vectors not found: {GOLDEN / name} (they live in ../shared/golden)")
    from safetensors.torch import load_file

    return load_file(str(GOLDEN / name))


def report(tag: str, got: torch.Tensor, want: torch.Tensor) -> float:
    err = (got.double() - want.double()).abs()
    print(f"{tag}: max abs err {err.max().item():.3e}, mean {err.mean().item():.3e}")
    return err.max().item()
