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
print(json.dumps(res))
