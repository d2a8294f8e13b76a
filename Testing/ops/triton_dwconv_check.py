"""Run SS3D's fused depthwise convolution + SiLU through Triton's CPU interpreter against PyTorch's.

Run as a script (a subprocess of test_depthwise_conv.py): TRITON_INTERPRET must be set before triton
is imported. Prints one JSON line {case: max abs difference}.
"""

import json

from medsegmamba.ops.triton.interpreter import enable

enable()  # before triton is imported

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from medsegmamba.ops.triton.depthwise_conv import dwconv3_silu_triton  # noqa: E402

res = {}
torch.manual_seed(0)
# channels over one block (70 > 64) and a box whose sides differ, so a mixed-up axis shows;
# a single voxel (every neighbour padding); no bias
for name, (batch, channels, size, bias) in {"box": (2, 70, (5, 4, 3), True), "voxel": (1, 8, (1, 1, 1), True),
                                            "no_bias": (1, 16, (3, 3, 3), False)}.items():
    conv = torch.nn.Conv3d(channels, channels, 3, padding=1, groups=channels, bias=bias)
    x = torch.randn(batch, channels, *size) * 2
    with torch.no_grad():
        want = F.silu(conv(x))
        got = dwconv3_silu_triton(x, conv.weight, conv.bias)
        # the kernel's output is channels-last memory in a (B, C, ...) view, as SS3D's scan reads it
        assert got.shape == want.shape and got.permute(0, 2, 3, 4, 1).is_contiguous()
        res[name] = (got - want).abs().max().item()
        # channels-last input (SS3D's in-projection gives it so): read without a copy, same result
        res[name + "_cl"] = (dwconv3_silu_triton(x.contiguous(memory_format=torch.channels_last_3d), conv.weight,
                                                 conv.bias) - want).abs().max().item()
# gradients of x, weight and bias against float64 autograd, relative to the largest of each
for name, (batch, channels, size, bias) in {"grad_box": (2, 70, (5, 4, 3), True),
                                            "grad_voxel": (1, 8, (1, 1, 1), False)}.items():
    conv = torch.nn.Conv3d(channels, channels, 3, padding=1, groups=channels, bias=bias).double()
    x = (torch.randn(batch, channels, *size, dtype=torch.float64) * 2).requires_grad_()
    dy = torch.randn(batch, channels, *size, dtype=torch.float64)
    want = torch.autograd.grad((F.silu(conv(x)) * dy).sum(), [x, *conv.parameters()])
    xf = x.detach().float().requires_grad_()
    convf = conv.float()
    got = torch.autograd.grad((dwconv3_silu_triton(xf, convf.weight, convf.bias) * dy.float()).sum(),
                              [xf, *convf.parameters()])
    res[name] = [(a.double() - b).abs().max().item() / max(1.0, b.abs().max().item()) for a, b in zip(got, want)]
print(json.dumps(res))
