"""SS3D's depthwise 3x3x3 convolution + SiLU: the fused Triton kernel against PyTorch's (interpreter
on the CPU, the GPU when there is one) and the routing between them."""

import importlib.util

import pytest
import torch
import torch.nn.functional as F

from medsegmamba.ops.depthwise_conv import depthwise_conv3d_silu, dwconv_route


@pytest.mark.skipif(importlib.util.find_spec("triton") is None, reason="triton is not installed")
def test_fused_kernel_matches_pytorch_through_the_interpreter(run_check):
    res = run_check("triton_dwconv_check.py")
    print(res)
    assert set(res) == {"box", "box_cl", "voxel", "voxel_cl", "no_bias", "no_bias_cl", "grad_box", "grad_voxel"}
    assert max(v for k, v in res.items() if not k.startswith("grad")) < 1e-5
    # gradients of x, weight, bias (float32 kernels against float64 autograd), relative to the largest
    assert max(res["grad_box"]) < 1e-5 and max(res["grad_voxel"]) < 1e-5


def test_route_keeps_pytorch_on_cpu(monkeypatch):
    conv = torch.nn.Conv3d(6, 6, 3, padding=1, groups=6)
    x = torch.randn(1, 6, 4, 4, 4)
    calls = []
    monkeypatch.setattr("medsegmamba.ops.depthwise_conv._triton_kernel", lambda: calls.append(1))
    with torch.no_grad():
        assert torch.equal(depthwise_conv3d_silu(x, conv), F.silu(conv(x)))  # CPU: no kernel asked for
    y = depthwise_conv3d_silu(x, conv)
    y.sum().backward()  # autograd flows through PyTorch's convolution
    assert conv.weight.grad is not None and calls == []


def test_route_is_checked(monkeypatch):
    monkeypatch.delenv("MEDSEGMAMBA_DWCONV", raising=False)
    assert dwconv_route() == "auto"
    monkeypatch.setenv("MEDSEGMAMBA_DWCONV", "cudnn")
    with pytest.raises(ValueError, match=r"\$MEDSEGMAMBA_DWCONV must be one of auto, torch, got 'cudnn'"):
        dwconv_route()


def test_route_takes_the_kernel_where_it_applies_unless_told_not_to(monkeypatch):
    conv = torch.nn.Conv3d(6, 6, 3, padding=1, groups=6)
    x = torch.randn(1, 6, 4, 4, 4)
    calls = []
    monkeypatch.setattr("medsegmamba.ops.depthwise_conv._fused_applies", lambda conv, x: True)  # as on CUDA
    monkeypatch.setattr("medsegmamba.ops.depthwise_conv._triton_kernel",
                        lambda: lambda x, w, b: calls.append(1) or F.silu(F.conv3d(x, w, b, padding=1, groups=6)))
    monkeypatch.delenv("MEDSEGMAMBA_DWCONV", raising=False)
    depthwise_conv3d_silu(x, conv)           # under autograd (training)
    with torch.no_grad():
        depthwise_conv3d_silu(x, conv)       # inference
    assert calls == [1, 1]
    monkeypatch.setenv("MEDSEGMAMBA_DWCONV", "torch")
    depthwise_conv3d_silu(x, conv)
    assert calls == [1, 1]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_fused_kernel_gradients_match_pytorch_on_the_gpu():
    # the reference in float64 (cuDNN's float32 weight gradient may run in TF32, ~1e-3 off)
    torch.manual_seed(0)
    conv = torch.nn.Conv3d(96, 96, 3, padding=1, groups=96).cuda()
    x = torch.randn(2, 96, 12, 12, 12, device="cuda").contiguous(memory_format=torch.channels_last_3d)
    dy = torch.randn(2, 96, 12, 12, 12, device="cuda")
    conv64 = torch.nn.Conv3d(96, 96, 3, padding=1, groups=96).cuda().double()
    conv64.load_state_dict(conv.state_dict())
    x64 = x.double().requires_grad_()
    want = torch.autograd.grad((F.silu(conv64(x64)) * dy.double()).sum(), [x64, *conv64.parameters()])
    from medsegmamba.ops.triton.depthwise_conv import dwconv3_silu_triton
    x.requires_grad_()
    got = torch.autograd.grad((dwconv3_silu_triton(x, conv.weight, conv.bias) * dy).sum(), [x, *conv.parameters()])
    errors = [((a.double() - b).abs().max() / max(1.0, b.abs().max().item())).item() for a, b in zip(got, want)]
    assert [a.shape for a in got] == [b.shape for b in want] and max(errors) <= 1e-5, errors


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("autocast", [False, True])
@pytest.mark.parametrize("batch,channels,size", [(2, 70, (5, 4, 3)), (3, 1024, (12, 12, 12)), (1, 8, (1, 1, 1))])
def test_fused_kernel_matches_pytorch_on_the_gpu(autocast, batch, channels, size):
    torch.manual_seed(0)
    conv = torch.nn.Conv3d(channels, channels, 3, padding=1, groups=channels).cuda()
    x = torch.randn(batch, channels, *size, device="cuda").contiguous(memory_format=torch.channels_last_3d)
    with torch.inference_mode(), torch.autocast("cuda", dtype=torch.bfloat16, enabled=autocast):
        got = depthwise_conv3d_silu(x, conv)
        want = F.silu(conv(x))
    assert got.dtype == want.dtype and got.shape == want.shape
    # bf16: both round the output (cuDNN the convolution's too); float32: accumulation order only
    tol = 2e-2 if autocast else 1e-5
    assert (got.float() - want.float()).abs().max() <= tol * max(1.0, want.float().abs().max().item())
