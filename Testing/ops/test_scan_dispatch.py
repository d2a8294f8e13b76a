"""The one place that picks a scan implementation: argument, environment variable, errors."""

import importlib

import pytest
import torch

from medsegmamba.ops import selective_scan, selective_scan_ref
from medsegmamba.ops.selective_scan import ENV_VAR, resolve_impl

ss_module = importlib.import_module("medsegmamba.ops.selective_scan")  # the module, not the function


def small_inputs():
    g = torch.Generator().manual_seed(0)
    return (torch.randn(1, 4, 5, generator=g), torch.randn(1, 4, 5, generator=g), -torch.rand(4, 3, generator=g),
            torch.randn(1, 2, 3, 5, generator=g), torch.randn(1, 2, 3, 5, generator=g))


def test_auto_on_cpu_is_ref(monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    assert resolve_impl(None, "cpu") == "ref"
    assert resolve_impl("auto", "cpu") == "ref"
    ins = small_inputs()
    assert torch.equal(selective_scan(*ins), selective_scan_ref(*ins))


def test_env_var_is_read_when_impl_is_none(monkeypatch):
    monkeypatch.setenv(ENV_VAR, "ref")
    assert resolve_impl(None, "cpu") == "ref"
    monkeypatch.setenv(ENV_VAR, "fastest")
    with pytest.raises(ValueError, match=r"\$MEDSEGMAMBA_SCAN must be one of auto, ref, triton, mamba_ssm, got 'fastest'"):
        selective_scan(*small_inputs())


def test_argument_wins_over_env_var(monkeypatch):
    monkeypatch.setenv(ENV_VAR, "triton")
    assert resolve_impl("ref", "cpu") == "ref"


def test_bad_impl_name_is_named():
    with pytest.raises(ValueError, match="impl must be one of .* got 'cuda'"):
        selective_scan(*small_inputs(), impl="cuda")


def test_forcing_an_impl_that_cannot_run_says_why():
    with pytest.raises(RuntimeError, match="impl='triton' cannot run: .*"):
        selective_scan(*small_inputs(), impl="triton")
    with pytest.raises(RuntimeError, match="impl='mamba_ssm' cannot run: .*"):
        selective_scan(*small_inputs(), impl="mamba_ssm")


def test_auto_prefers_mamba_ssm_then_triton_on_cuda(monkeypatch):
    monkeypatch.setattr(ss_module, "_mamba_ssm_scan", object())
    assert resolve_impl("auto", "cuda") == "mamba_ssm"
    monkeypatch.setattr(ss_module, "_mamba_ssm_scan", None)
    monkeypatch.setattr(ss_module, "_triton_scan", lambda: object())
    assert resolve_impl("auto", "cuda") == "triton"
    monkeypatch.setattr(ss_module, "_triton_scan", lambda: None)
    assert resolve_impl("auto", "cuda") == "ref"
    with pytest.raises(RuntimeError, match="triton cannot be imported"):
        resolve_impl("triton", "cuda")
